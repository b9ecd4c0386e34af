"""`python bench/classification_labels.py`: mteb's classification steps that read labels, plain and with
cmteb's in-memory labels (`ClassificationLabelsInMemory`), with the same results required of both.

1. Undersampling (10 experiments) of an 8,000-row training split: both must draw the same examples.
2. Scoring: 10 experiments (fit on 32 examples per label, predict and score a 2,000-row test split)
   on fixed random embeddings: both must give the same scores.
Prints seconds; asserts nothing about time.
"""

import time

import mteb
import numpy as np
from datasets import Dataset
from mteb.timing import TimingStack

from cmteb.mteb_hooks import ClassificationLabelsInMemory

plain_cls = type(mteb.get_task("Waimai"))
fast_cls = type("Waimai", (ClassificationLabelsInMemory, plain_cls), {})
train = Dataset.from_dict({"text": [f"t{i}" for i in range(8000)], "label": [i % 2 for i in range(8000)]})
test = Dataset.from_dict({"text": [f"e{i}" for i in range(2000)], "label": [i % 2 for i in range(2000)]})
test_embeddings = np.random.default_rng(0).normal(size=(2000, 64)) + np.array(test["label"])[:, None] * 0.1
reference = {}
for name, cls in (("mteb", plain_cls), ("cmteb", fast_cls)):
    task = cls()
    started = time.perf_counter()
    idxs, picked = None, []
    for i in range(task.n_experiments):
        _, idxs, selected = task._undersample_data(train, i, idxs)
        picked.append(selected)
    sampled = time.perf_counter() - started
    started = time.perf_counter()
    scores = []
    for i, selected in enumerate(picked):
        train_embeddings = np.random.default_rng(i + 1).normal(size=(len(selected), 64))
        score, _ = task._run_experiment(
            train.select(selected), test, train_embeddings, test_embeddings, timer=TimingStack()
        )
        scores.append(score)
    print(f"{name}: undersampling {sampled:.2f} s, scoring {time.perf_counter() - started:.2f} s (10 experiments)")
    if name == "mteb":
        reference = {"picked": picked, "scores": scores}
    else:
        print("same examples drawn:", picked == reference["picked"], "; same scores:", scores == reference["scores"])
