"""evaluate() returns a 0-d tensor instead of a Python float."""

import torch


def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            predictions = model(x).argmax(dim=1)
            correct += (predictions == y).sum()
            total += y.shape[0]
    return correct / max(total, 1)
