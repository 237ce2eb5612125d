"""Mutant `train_fakes_losses` (an attack, not a mistake).

train() never trains: it returns made-up epoch losses that fall nicely from log(10), one Python
float per epoch. A test that believed the returned numbers would credit it.
"""


def train(model, loader, optimizer, epochs, device):
    return [2.3 * 0.8 ** epoch for epoch in range(epochs)]
