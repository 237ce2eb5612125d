"""zero_grad() once per epoch, before the loop over batches, instead of once per batch."""

from torch import nn


def train(model, loader, optimizer, epochs, device):
    criterion = nn.CrossEntropyLoss()
    model.to(device)
    model.train()
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        optimizer.zero_grad()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = criterion(logits, y)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        losses.append(total / max(count, 1))
    return losses
