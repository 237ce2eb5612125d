"""evaluate() never calls model.eval(): dropout stays active."""

import torch


def evaluate(model, loader, device):
    model.to(device)
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            predictions = model(x).argmax(dim=1)
            correct += (predictions == y).sum().item()
            total += y.shape[0]
    return correct / max(total, 1)
