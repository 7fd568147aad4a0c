"""Adam for one model on the CPU, bit for bit torch.optim.Adam, without its start-up cost.

Every ``torch.optim`` optimiser imports ``torch._dynamo`` when it is built (its
``add_param_group`` and ``step`` are wrapped by ``torch._disable_dynamo``): 1.1–1.2 s on the
2-core machines, paid once by every training job, about a quarter of a short job's time.
:func:`adam` returns :class:`Adam`, which takes torch.optim.Adam's CPU update without that
import:

* ``fused=True``: torch's fused CPU kernel (``torch._fused_adam_``), after the same
  float32 step counters on the parameters' device, as torch.optim.Adam(fused=True);
* ``fused=False``: torch.optim.Adam's single-tensor update (its CPU default), with the
  float32 step counter on the CPU and the bias corrections in Python floats.

Off the CPU (CUDA), :func:`adam` returns torch.optim.Adam itself (its foreach or fused
kernels; the import is small next to CUDA's start). Only what certsmooth uses is
supported: no weight decay, amsgrad, maximize or closure. ``state``, ``param_groups``,
``state_dict`` and ``load_state_dict`` have torch's layout, so the epoch checkpoints of
:mod:`certsmooth.smoothing.resume` read and write either. ``tests/test_adam.py`` checks
the weights and the state against torch.optim.Adam bit for bit.
"""

from __future__ import annotations

import torch


def adam(params, lr: float, fused: bool = False):
    """Adam over ``params``: :class:`Adam` when they are all on the CPU, torch.optim.Adam otherwise."""
    params = list(params)
    if all(p.device.type == "cpu" for p in params):
        return Adam(params, lr=lr, fused=fused)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


class Adam:
    """torch.optim.Adam(params, lr, betas, eps, fused) on CPU tensors (see the module)."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 fused: bool = False):  # fmt: skip
        params = list(params)
        if not params or any(p.device.type != "cpu" for p in params):
            raise ValueError("certsmooth's Adam takes a non-empty list of CPU tensors (use smoothing.adam.adam)")
        if fused and (any(not torch.is_floating_point(p) for p in params) or len({p.dtype for p in params}) > 1):
            raise ValueError("fused Adam needs floating-point parameters of one dtype (torch would group them)")
        self.fused = bool(fused)
        # torch.optim.Adam's group keys, so that either class loads the other's state_dict
        self.param_groups = [{
            "params": params, "lr": float(lr), "betas": tuple(map(float, betas)), "eps": float(eps),
            "weight_decay": 0.0, "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
            "differentiable": False, "fused": self.fused, "decoupled_weight_decay": False,
        }]  # fmt: skip
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @property
    def _params(self) -> list[torch.Tensor]:
        return self.param_groups[0]["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        st = self.state.get(p)
        if st is None:  # as torch's lazy initialisation
            step = torch.zeros((), dtype=torch.float32) if self.fused else torch.tensor(0.0, dtype=torch.float32)
            st = self.state[p] = {
                "step": step,
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return st

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        params = [p for p in self._params if p.grad is not None]
        if not params:
            return
        states = [self._state(p) for p in params]
        if self.fused:
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [], steps, amsgrad=False, lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps,
                maximize=False, grad_scale=None, found_inf=None,
            )  # fmt: skip
            return
        for p, st in zip(params, states, strict=True):
            grad, exp_avg, exp_avg_sq = p.grad, st["exp_avg"], st["exp_avg_sq"]
            st["step"] += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            t = st["step"].item()
            step_size = lr / (1 - beta1**t)
            denom = (exp_avg_sq.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict:
        """torch.optim's layout: parameters by index; the tensors are the live state."""
        index = {id(p): i for i, p in enumerate(self._params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {
            "state": {index[id(p)]: dict(st) for p, st in self.state.items()},
            "param_groups": [{**group, "params": list(range(len(self._params)))}],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Per-parameter state by index, cast as torch.optim.Adam casts it: moments to their
        parameter's dtype and device, ``step`` to a float32 scalar (copies, not the given tensors)."""
        params = self._params
        state = {}
        for idx, st in state_dict["state"].items():
            p = params[int(idx)]
            state[p] = {
                key: (torch.tensor(float(v), dtype=torch.float32) if key == "step"
                      else v.detach().to(device=p.device, dtype=p.dtype, copy=True))  # fmt: skip
                for key, v in st.items()
            }
        self.state = state
