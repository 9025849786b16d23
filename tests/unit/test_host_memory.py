"""The host allocator set for training (``cockpit/engine/host_memory.py``)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

from cockpit.engine.host_memory import why_not
from support import REPO, SAMPLE


def test_the_allocator_is_left_alone_when_the_user_chose_one():
    assert why_not({}, "linux") == ""
    assert why_not({"COCKPIT_MALLOC": "system"}, "linux") == "COCKPIT_MALLOC=system"
    assert why_not({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "linux") == "LD_PRELOAD names another allocator"
    assert why_not({"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "0"}, "linux") == (
        "MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_ set by the user"
    )
    assert why_not({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "linux") == "GLIBC_TUNABLES set by the user"
    assert why_not({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, "linux") == ""
    assert why_not({}, "darwin") == "not Linux (darwin)"


# Ten iterations of the tiny model, in a thread (as the trainer trains), counting that
# thread's minor page faults: memory the kernel had to hand out afresh.
FAULTS = textwrap.dedent(f"""
    import resource, sys, threading
    import torch
    if sys.argv[1] == "kept":
        from cockpit.engine.host_memory import keep_freed_memory
        print(keep_freed_memory())
    from cockpit.config import load_config
    from cockpit.data.loader import build_dataset, collate_fn
    from cockpit.engine.model import build_model

    torch.set_num_threads(1)

    def train(out):
        config = load_config({str(SAMPLE / "shapes.toml")!r}, [])
        torch.manual_seed(0)
        model = build_model(config, instrument=False).train()
        dataset = build_dataset(config, "train", train=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
        for i in range(14):
            if i == 4:
                start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            images, targets = collate_fn([dataset[j] for j in range(4 * i, 4 * i + 4)])
            optimizer.zero_grad()
            sum(model(list(images), list(targets)).values()).backward()
            optimizer.step()
        out.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start) / 10)

    out = []
    thread = threading.Thread(target=train, args=(out,))
    thread.start()
    thread.join()
    print(out[0])
""")


def faults_per_iteration(mode: str, **env: str) -> tuple[float, list[str]]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("MALLOC_") and k not in ("LD_PRELOAD", "COCKPIT_MALLOC", "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], cwd=REPO, capture_output=True, text=True,
                          env=environ | {"OMP_NUM_THREADS": "1"} | env, timeout=300)
    assert done.returncode == 0, done.stderr
    *said, faults = done.stdout.split("\n")[:-1]
    return float(faults), said


def test_memory_freed_in_one_iteration_serves_the_next():
    default, _ = faults_per_iteration("default")
    kept, said = faults_per_iteration("kept")
    if platform.libc_ver()[0] == "glibc":
        assert said == ["glibc, freed memory kept (1 arena, trim above 1024 MB, mmap from 32 MB)"]
        # An iteration allocates tens of MB; with glibc's defaults much of it comes back
        # from the kernel page by page every iteration (~7,000 faults here), kept: < 4 MB.
        assert kept < 1000, kept
        assert kept * 5 < default, (kept, default)
    else:
        assert said[0].startswith("system default (")


def test_cockpit_malloc_system_leaves_glibc_as_it_is():
    _, said = faults_per_iteration("kept", COCKPIT_MALLOC="system")
    assert said == ["system default (COCKPIT_MALLOC=system)"]
