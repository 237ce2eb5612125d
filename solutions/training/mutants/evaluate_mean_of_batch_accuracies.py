"""evaluate() averages per-batch accuracies, which is wrong when the last batch is smaller."""

import torch


def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    accuracies = []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            predictions = model(x).argmax(dim=1)
            accuracies.append((predictions == y).float().mean().item())
    return sum(accuracies) / len(accuracies)
