"""Mutant `lookup_table_model` (an attack, not a mistake).

build_model() returns no network but a table of scikit-learn's public digits and their labels,
and answers with the label of the nearest stored image: it is accurate before any training, and
training changes nothing. It must earn nothing on the held-out tests.
"""

import torch
from torch import nn


def build_model():
    from sklearn.datasets import load_digits

    digits = load_digits()

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))  # something for the optimizer to hold
            self.register_buffer("images", torch.tensor(digits.data / 16.0, dtype=torch.float32))
            self.register_buffer("labels", torch.tensor(digits.target, dtype=torch.int64))

        def forward(self, x):
            nearest = torch.cdist(x, self.images).argmin(dim=1)
            return nn.functional.one_hot(self.labels[nearest], 10).float() * 10 + self.unused

    return Lookup()
