"""The running loss is not reset at the start of each epoch, so the reported losses grow."""

from torch import nn


def train(model, loader, optimizer, epochs, device):
    criterion = nn.CrossEntropyLoss()
    model.to(device)
    model.train()
    losses = []
    total = 0.0
    for _ in range(epochs):
        count = 0
        for x, y in loader:
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
