"""The minimal task of docs/engine.md is real: it trains through the engine as written."""

import re
import types
from pathlib import Path

from mbv1.datasets.digits import write_digits
from mbv1.engine import load_config, train

DOC = Path(__file__).parent.parent / "docs" / "engine.md"


def test_the_documented_minimal_task_trains(tmp_path):
    pattern = r"### A minimal task.*?```python\n(.*?)```"
    code = re.search(pattern, DOC.read_text(), re.DOTALL).group(1)
    module = types.ModuleType("rotation_doc")
    exec(compile(code, str(DOC), "exec"), module.__dict__)  # noqa: S102  the doc's own code
    task = module.RotationTask
    write_digits(tmp_path / "d", size=16, per_class=3)
    cfg = load_config(task, None, ["rotation.angles=2", "model.alpha=0.25",
                                   "model.resolution=32", "train.batch_size=8", "train.workers=0",
                                   "run.tensorboard=false", f"run.project={tmp_path}"],
                      {"data.path": str(tmp_path / "d"), "train.epochs": 1})
    result = train(task, cfg, tty=False)
    assert result.metrics["primary"] == "accuracy"
    assert result.metrics["split"] == "first 20% (6 images)"
    assert (result.run_dir / "best.pt").is_file() and cfg.to_dict()["rotation"] == {"angles": 2}
