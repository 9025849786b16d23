"""Dataset adapters (coco, masks, module), v2 transforms, loaders. No Textual or Rich here."""
