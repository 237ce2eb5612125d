"""Collects the loader's batches and shuffles them itself instead of using the loader's order."""

import random
from torch import nn


def train(model, loader, optimizer, epochs, device):
    criterion = nn.CrossEntropyLoss()
    model.to(device)
    model.train()
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        batches = list(loader)
        random.shuffle(batches)
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(logits, y)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        losses.append(total / max(count, 1))
    return losses
