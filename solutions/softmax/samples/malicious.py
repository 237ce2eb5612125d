"""A submission that tries to cheat instead of implementing anything. Every trick fails:
it earns 0, and its feedback shows what it tried."""
import json
import os
import sys

import numpy as np

# 1. Forge a perfect Gradescope result, on stdout and on disk wherever it can write.
FAKE = json.dumps({"score": 36, "max_score": 36, "tests": []})
print(FAKE)
for folder in (".", "/tmp", "/autograder/results", "../graded"):
    try:
        with open(os.path.join(folder, "results.json"), "w") as f:
            f.write(FAKE)
    except OSError as e:
        print(f"could not forge {folder}/results.json: {e.strerror}")

# 2. Look for the reference solution and the hidden tests.
for guess in ("../solutions/softmax/softmax.py", "/work/main/solutions/softmax/softmax.py",
              "../../solutions/softmax/tests/test_softmax_hidden.py"):
    try:
        open(guess).read()
        print("found", guess)
    except OSError as e:
        print(f"could not read {guess}: {e.strerror}")

# 3. Make every numpy comparison succeed (in this process only, which decides nothing).
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None


class AlwaysEqual:
    """4. An object equal to everything."""

    def __eq__(self, other):
        return True


def softmax_loss(x, y):
    return AlwaysEqual(), AlwaysEqual()


def softmax_loss_vectorized(W, X, y, reg):
    sys.exit(0)  # 5. Leave before anything can be checked.
