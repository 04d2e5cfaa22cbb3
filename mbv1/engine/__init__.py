"""The training engine shared by every task (docs/engine.md).

``train(task_cls, cfg)`` runs a task (:class:`mbv1.engine.task.Task`) with a resolved config
(:mod:`mbv1.engine.config`) into ``runs/<task>/<name>/``; ``resume_config`` rebuilds the
config of a run to continue; :mod:`mbv1.engine.evaluate` and :mod:`mbv1.engine.report` read
the checkpoints back.
"""

from mbv1.engine.config import Config, load_config
from mbv1.engine.resume import resume_config
from mbv1.engine.trainer import TrainResult, train

__all__ = ["Config", "TrainResult", "load_config", "resume_config", "train"]
