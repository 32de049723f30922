"""The API must not pull in torch: the API image is built without it."""

import subprocess
import sys


def test_importing_the_app_leaves_torch_out() -> None:
    code = "import sys, service.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False"
