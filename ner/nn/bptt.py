"""Backpropagation through time by hand, for the basic RNN and the LSTM.

The seed notes' recursion, right to left: the loss L = Σ_t L<t>(ŷ<t>, y<t>) reaches a<t> directly
(through ŷ<t>) and through a<t+1>, so

    ∂L/∂a<t> = ∂L<t>/∂a<t> + (∂a<t+1>/∂a<t>)ᵀ ∂L/∂a<t+1>        for t = Tx, ..., 1

and every weight's gradient is a sum over the steps, because the same W is used at every step.
Each step's local derivatives are those of the notes' programming exercise (``rnn_cell_backward``,
``lstm_cell_backward``). ``rnn`` and ``lstm`` wrap the recursion in a ``torch.autograd.Function``,
so a layer trains with it (``SeedRNNConfig(bptt="manual")``, or ``cell: seed_lstm_bptt``);
``tests/ner/test_bptt.py`` checks it with ``torch.autograd.gradcheck`` in float64.

Inputs are time-major, x (Tx, B, D); weights come in the layer's block layout (see
``ner.nn.cells``): W_x (G*H, D), W_a (G*H, H), b (G*H,) with G = 1 for the RNN and blocks
[c~, u, f, o] for the LSTM. Only the recursion over t is a loop; the sums over t of the weight
gradients are one matrix product each, after it.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from ner.nn.cells import Activation, _script, script

# ------------------------------------------------------------------------------------ the loops


def _rnn_backward(grad_a: Tensor, a: Tensor, w_a: Tensor, relu: bool) -> tuple[Tensor, Tensor]:
    """grad_a = ∂L<t>/∂a<t>, a (Tx, B, H), W_aa (H, H) -> (∂L/∂z<t> (Tx, B, H), ∂L/∂a<0> (B, H)).

    z<t> = W_aa a<t-1> + W_ax x<t> + b_a and a<t> = g(z<t>), so ∂L/∂z<t> = ∂L/∂a<t> * g'(z<t>),
    with g' written through a<t>: 1 - a<t>² for tanh, [a<t> > 0] for relu.
    """
    da_next = torch.zeros_like(a[0])  # ∂L/∂a<t> through a<t+1>; nothing beyond Tx
    dzs: list[Tensor] = []
    for t in range(a.shape[0] - 1, -1, -1):
        da = grad_a[t] + da_next  # ∂L/∂a<t>, the notes' da_next + da<t>
        dz = da * (a[t] > 0).to(a.dtype) if relu else da * (1 - a[t] * a[t])
        da_next = dz @ w_a  # (B, H): W_aaᵀ ∂L/∂z<t>, in row-vector form
        dzs.append(dz)
    return torch.stack(dzs).flip(0), da_next


def _lstm_forward(zx: Tensor, w_a: Tensor, a0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """zx (Tx, B, 4H) -> a (Tx, B, H), c (Tx, B, H), acts (Tx, B, 4H) = [c~, Γu, Γf, Γo].

    The forward pass of ``ner.nn.cells``' LSTM loop, keeping what the backward pass needs.
    """
    h = a0.shape[1]
    a, c = a0, c0
    a_s: list[Tensor] = []
    c_s: list[Tensor] = []
    act_s: list[Tensor] = []
    for t in range(zx.shape[0]):
        z = zx[t] + a @ w_a.t()  # (B, 4H)
        acts = torch.cat([torch.tanh(z[:, :h]), torch.sigmoid(z[:, h:])], dim=1)
        c = acts[:, h : 2 * h] * acts[:, :h] + acts[:, 2 * h : 3 * h] * c
        a = acts[:, 3 * h :] * torch.tanh(c)
        a_s.append(a)
        c_s.append(c)
        act_s.append(acts)
    return torch.stack(a_s), torch.stack(c_s), torch.stack(act_s)


def _lstm_backward(
    grad_a: Tensor, grad_c: Tensor, acts: Tensor, c: Tensor, c0: Tensor, w_a: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """-> (∂L/∂z<t> (Tx, B, 4H) in block order [c~, u, f, o], ∂L/∂a<0>, ∂L/∂c<0>).

    grad_a (Tx, B, H) = ∂L<t>/∂a<t>; grad_c (B, H) = ∂L/∂c<Tx> from outside (the final state).
    """
    h = c0.shape[1]
    da_next = torch.zeros_like(c0)  # ∂L/∂a<t> through step t+1
    dc_next = grad_c  # ∂L/∂c<t> through step t+1
    dzs: list[Tensor] = []
    for t in range(c.shape[0] - 1, -1, -1):
        c_tilde, gamma_u = acts[t, :, :h], acts[t, :, h : 2 * h]
        gamma_f, gamma_o = acts[t, :, 2 * h : 3 * h], acts[t, :, 3 * h :]
        c_prev = c[t - 1] if t > 0 else c0
        tanh_c = torch.tanh(c[t])
        da = grad_a[t] + da_next
        dc = dc_next + da * gamma_o * (1 - tanh_c * tanh_c)  # a<t> = Γo * tanh(c<t>)
        d_o = da * tanh_c  # ∂L/∂Γo
        # c<t> = Γu * c~<t> + Γf * c<t-1>; then through tanh and the sigmoids to the pre-activations
        dz = torch.cat(
            [
                dc * gamma_u * (1 - c_tilde * c_tilde),
                dc * c_tilde * gamma_u * (1 - gamma_u),
                dc * c_prev * gamma_f * (1 - gamma_f),
                d_o * gamma_o * (1 - gamma_o),
            ],
            dim=1,
        )  # (B, 4H)
        dc_next = dc * gamma_f  # the memory cell's own path: ∂c<t>/∂c<t-1> = Γf
        da_next = dz @ w_a  # (B, H)
        dzs.append(dz)
    return torch.stack(dzs).flip(0), da_next, dc_next


_FUNCTIONS = {
    "rnn_backward": _rnn_backward,
    "lstm_forward": _lstm_forward,
    "lstm_backward": _lstm_backward,
}


@functools.cache
def _compiled(name: str) -> Any:
    return script(_FUNCTIONS[name])


def _weight_grads(
    dz: Tensor, x: Tensor, a_prev: Tensor, w_x: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sums over t, one product each: dz (Tx, B, G*H) -> ∂L/∂x, ∂L/∂W_x, ∂L/∂W_a, ∂L/∂b."""
    dz_flat = dz.reshape(-1, dz.shape[2])  # (Tx*B, G*H)
    dw_x = dz_flat.t() @ x.reshape(-1, x.shape[2])  # Σ_t dz<t>ᵀ x<t>
    dw_a = dz_flat.t() @ a_prev.reshape(-1, a_prev.shape[2])  # Σ_t dz<t>ᵀ a<t-1>
    return dz @ w_x, dw_x, dw_a, dz_flat.sum(0)


# -------------------------------------------------------------------------------- the Functions


class RNNBPTT(torch.autograd.Function):
    """a<t> = g(W_aa a<t-1> + W_ax x<t> + b_a) over a sequence, with a hand-written backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_x: Tensor, w_a: Tensor, b: Tensor, a0: Tensor, relu: bool):
        """x (Tx, B, D), W_ax (H, D), W_aa (H, H), b_a (H,), a<0> (B, H) -> a (Tx, B, H)."""
        a = _script("rnn")(x @ w_x.t() + b, w_a, a0, relu)
        ctx.save_for_backward(x, w_x, w_a, a0, a)
        ctx.relu = relu
        return a

    @staticmethod
    def backward(ctx: Any, grad_a: Tensor):
        x, w_x, w_a, a0, a = ctx.saved_tensors
        if a.shape[0] == 0:
            return (torch.zeros_like(x), torch.zeros_like(w_x), torch.zeros_like(w_a),
                    w_a.new_zeros(w_a.shape[0]), torch.zeros_like(a0), None)  # fmt: skip
        dz, da0 = _compiled("rnn_backward")(grad_a.contiguous(), a, w_a, ctx.relu)
        a_prev = torch.cat([a0.unsqueeze(0), a[:-1]])  # a<0>..a<Tx-1>
        dx, dw_x, dw_a, db = _weight_grads(dz, x, a_prev, w_x)
        return dx, dw_x, dw_a, db, da0, None


class LSTMBPTT(torch.autograd.Function):
    """The seed LSTM over a sequence (blocks [c~, u, f, o]), with a hand-written backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_x: Tensor, w_a: Tensor, b: Tensor, a0: Tensor, c0: Tensor):
        """x (Tx, B, D), W_x (4H, D), W_a (4H, H), b (4H,), a<0>, c<0> (B, H) -> (a, c<Tx>)."""
        if x.shape[0] == 0:
            ctx.save_for_backward(x, w_x, w_a, a0, c0)
            ctx.empty = True
            return x.new_zeros(0, a0.shape[0], a0.shape[1]), c0.clone()
        a, c, acts = _compiled("lstm_forward")(x @ w_x.t() + b, w_a, a0, c0)
        ctx.save_for_backward(x, w_x, w_a, a0, c0, a, c, acts)
        ctx.empty = False
        return a, c[-1]

    @staticmethod
    def backward(ctx: Any, grad_a: Tensor, grad_c: Tensor):
        if ctx.empty:
            x, w_x, w_a, a0, c0 = ctx.saved_tensors
            return (torch.zeros_like(x), torch.zeros_like(w_x), torch.zeros_like(w_a),
                    w_a.new_zeros(w_a.shape[0]), torch.zeros_like(a0), grad_c)  # fmt: skip
        x, w_x, w_a, a0, c0, a, c, acts = ctx.saved_tensors
        backward = _compiled("lstm_backward")
        dz, da0, dc0 = backward(grad_a.contiguous(), grad_c.contiguous(), acts, c, c0, w_a)
        a_prev = torch.cat([a0.unsqueeze(0), a[:-1]])  # a<0>..a<Tx-1>
        dx, dw_x, dw_a, db = _weight_grads(dz, x, a_prev, w_x)
        return dx, dw_x, dw_a, db, da0, dc0


def rnn(
    x: Tensor, w_x: Tensor, w_a: Tensor, b: Tensor, a0: Tensor, activation: Activation = "tanh"
) -> Tensor:
    """The basic RNN with hand-written BPTT: x (Tx, B, D) -> a (Tx, B, H)."""
    return RNNBPTT.apply(x, w_x, w_a, b, a0, activation == "relu")


def lstm(
    x: Tensor, w_x: Tensor, w_a: Tensor, b: Tensor, a0: Tensor, c0: Tensor
) -> tuple[Tensor, Tensor]:
    """The LSTM with hand-written BPTT: x (Tx, B, D) -> (a (Tx, B, H), c<Tx> (B, H))."""
    return LSTMBPTT.apply(x, w_x, w_a, b, a0, c0)
