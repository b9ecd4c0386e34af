"""`python bench/classification_labels.py`: mteb's classification undersampling (10 experiments) on an
8,000-row training split, plain and with cmteb's in-memory labels; both must draw the same examples.
Prints seconds; asserts nothing about time."""

import time

import mteb
from datasets import Dataset

from cmteb.mteb_hooks import ClassificationLabelsInMemory

plain_cls = type(mteb.get_task("Waimai"))
fast_cls = type("Waimai", (ClassificationLabelsInMemory, plain_cls), {})
split = Dataset.from_dict({"text": [f"t{i}" for i in range(8000)], "label": [i % 2 for i in range(8000)]})
for name, cls in (("mteb", plain_cls), ("cmteb", fast_cls)):
    task = cls()
    started = time.perf_counter()
    idxs, picked = None, []
    for i in range(task.n_experiments):
        _, idxs, selected = task._undersample_data(split, i, idxs)
        picked.append(selected)
    print(f"{name}: {time.perf_counter() - started:.2f} s for {task.n_experiments} experiments")
    if name == "mteb":
        reference = picked
    else:
        print("same examples drawn:", picked == reference)
