"""evaluate() runs without torch.no_grad(), building graphs it never uses."""


def evaluate(model, loader, device):
    model.to(device)
    model.eval()
    correct, total = 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        predictions = model(x).argmax(dim=1)
        correct += (predictions == y).sum().item()
        total += y.shape[0]
    return correct / max(total, 1)
