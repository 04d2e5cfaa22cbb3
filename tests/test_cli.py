"""The CLI run for real, as a user would (subprocess of ``python -m mbv1``)."""

import json
import os
import subprocess
import sys

import pytest


def mbv1(*args, cwd=None, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mbv1", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=600)


def test_help_imports_no_torch():
    code = ("import sys; from mbv1.cli.main import app; "
            "assert 'torch' not in sys.modules, 'torch imported by the CLI module'")
    subprocess.run([sys.executable, "-c", code], check=True)
    r = mbv1("--help")
    assert r.returncode == 0 and "profile" in r.stdout


def test_profile_json_matches_paper():
    r = mbv1("profile", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["all_ok"]
    rows = {(x["table"], x["model"], x["quantity"]): x for x in out["rows"]}
    row = rows[("Table 4", "1.0 MobileNet-224", "mult-adds")]
    assert row["paper"] == 569 and abs(row["mbv1"] - 568.74) < 0.01


def test_profile_custom_setting():
    r = mbv1("profile", "--alpha", "0.5", "--resolution", "160", "--json")
    costs = json.loads(r.stdout)["costs"]
    assert costs["params"] == 1_331_592 and abs(costs["mult_adds"] / 1e6 - 76.52) < 0.01
    r = mbv1("profile", "--alpha", "0.75", "--resolution", "224")
    assert r.returncode == 0 and "Table 5" in r.stdout and "Conv DW 3x3" in r.stdout


def test_unknown_option_and_value_name_allowed_ones():
    r = mbv1("profile", "--alph", "0.5")
    assert r.returncode != 0 and "--alpha" in r.stderr
    r = mbv1("profile", "--variant", "deep")
    assert r.returncode != 0 and "shallow" in r.stderr


def test_info_and_bad_checkpoint(tmp_path):
    import torch

    from mbv1.backbone import MobileNetV1
    from mbv1.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.pt", task="classification", model=MobileNetV1(0.25, num_classes=2),
                    config={"model": {"alpha": 0.25}}, meta={"labels": ["cat", "dog"]})
    r = mbv1("info", tmp_path / "m.pt")
    assert r.returncode == 0 and "classification" in r.stdout and "dog" in r.stdout
    (tmp_path / "bad.pt").write_bytes(b"xx")
    r = mbv1("info", tmp_path / "bad.pt")
    assert r.returncode == 2
    assert "not a readable mbv1 checkpoint" in r.stderr and "Traceback" not in r.stderr
    torch.save({"a": torch.zeros(1)}, tmp_path / "foreign.pt")
    r = mbv1("info", tmp_path / "foreign.pt")
    assert r.returncode == 2 and "not an mbv1 checkpoint" in r.stderr


@pytest.mark.parametrize("args,match", [
    (["weights", "convert", "missing.pth", "-o", "x.pt", "--from", "timm"], "not found"),
    (["weights", "convert", "x.pth", "-o", "x.pt", "--from", "caffe"], "tf-slim"),
])
def test_weights_convert_errors(tmp_path, args, match):
    r = mbv1(*args, cwd=tmp_path)
    assert r.returncode != 0 and match in r.stderr and "Traceback" not in r.stderr
