"""Regenerates the bundled sample: ``python sample_data/generate.py`` (byte-identical output)."""

from cockpit.data.synthetic import main

if __name__ == "__main__":
    main()
