"""Softmax probabilities, not the raw logits, reach CrossEntropyLoss."""

import torch
from torch import nn


def train(model, loader, optimizer, epochs, device):
    criterion = nn.CrossEntropyLoss()
    model.to(device)
    model.train()
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(torch.softmax(logits, dim=1), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        losses.append(total / max(count, 1))
    return losses
