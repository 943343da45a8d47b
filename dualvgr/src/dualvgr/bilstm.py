"""The appearance BiLSTM's final states with a hand-written backward pass (the CPU hot path of a training step).

``bilstm_final_states(x, lstm)`` equals ``torch.cat(list(lstm(x)[1][0]), -1)`` for a one-layer bidirectional
time-major ``nn.LSTM`` with zero initial states (PyTorch's gate order i, f, g, o; tested against it, values and
gradients), i.e. the official ``VisualAppearanceEncoder``'s [h_fwd; h_bwd] per clip. It is a different schedule
of the same arithmetic:
- forward: one GEMM gives both directions' input gates for every step ([T*M, D] x [D, 8H], the bulk of the
  cost), then a T-step recurrence (one small matmul per direction and step) activates them in place and writes
  cells and states into preallocated buffers;
- backward: backpropagation through time over those buffers; each step's gate gradients overwrite its spent
  activations, so the gate buffer ends as the [T*M, 8H] gradient that one GEMM turns into both directions'
  input-weight gradients (and one GEMM per direction gives the recurrent-weight gradients).
Compared with autograd over the same ops this saves the flips, stacks, concatenations and gradient copies that
made up ~15 % of a CPU step. ``x`` needs no gradient in DualVGR (features are inputs); one is computed when asked.
The backward pass reuses the saved buffers in place, so a second backward through the same graph
(``retain_graph=True``) is refused by autograd's version check instead of giving wrong gradients.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


class _BiLSTMFinalStates(torch.autograd.Function):
    """Buffers are indexed by time t and direction d (0 forward, 1 backward): ``gates`` [T, M, 2, 4H] holds the
    input gates, then the activated gates (forward pass), then the gate gradients (backward pass), in place;
    ``states`` [T + 1, M, 2, H] holds h_d(t) at slot t + 1 - d and the zero initial states at slots 0 (d = 0)
    and T (d = 1), so h_d before time t sits at slot t + d; ``cells``/``tanh_cells`` [T, M, 2, H] hold c_d(t)."""

    @staticmethod
    def forward(ctx, x, w_ih_f, w_ih_b, b_f, b_b, w_hh_f, w_hh_b):
        steps, m, d_in = x.shape
        hid = w_hh_f.size(1)
        gates = torch.addmm(torch.cat([b_f, b_b]), x.view(steps * m, d_in), torch.cat([w_ih_f, w_ih_b]).t())
        gates = gates.view(steps, m, 2, 4 * hid)
        states = x.new_empty(steps + 1, m, 2, hid)
        states[0, :, 0].zero_()
        states[steps, :, 1].zero_()
        cells, tanh_cells = x.new_empty(2, steps, m, 2, hid).unbind(0)
        w_hh_t = (w_hh_f.t(), w_hh_b.t())
        for s in range(steps):
            for d, t in ((0, s), (1, steps - 1 - s)):
                a = gates[t, :, d].addmm_(states[t + d, :, d], w_hh_t[d])
                a[:, : 2 * hid].sigmoid_()
                a[:, 2 * hid: 3 * hid].tanh_()
                a[:, 3 * hid:].sigmoid_()
                i, f, g, o = a.split(hid, -1)
                c = cells[t, :, d]
                if s == 0:
                    torch.mul(i, g, out=c)
                else:
                    torch.mul(f, cells[t - 1 + 2 * d, :, d], out=c).addcmul_(i, g)
                torch.mul(o, torch.tanh(c, out=tanh_cells[t, :, d]), out=states[t + 1 - d, :, d])
        ctx.save_for_backward(x, w_ih_f, w_ih_b, w_hh_f, w_hh_b, gates, cells, tanh_cells, states)
        return torch.cat([states[steps, :, 0], states[0, :, 1]], dim=-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, w_ih_f, w_ih_b, w_hh_f, w_hh_b, gates, cells, tanh_cells, states = ctx.saved_tensors
        steps, m, d_in = x.shape
        hid = w_hh_f.size(1)
        w_hh = (w_hh_f, w_hh_b)
        dh = list(grad_out.split(hid, dim=-1))  # dL/dh_d at the last time each direction processes
        dc = [torch.zeros_like(dh[0]), torch.zeros_like(dh[0])]
        tmp = torch.empty_like(dh[0])
        d_gates = x.new_empty(m, 4 * hid)
        di, df, dg, do = d_gates.split(hid, -1)
        for s in reversed(range(steps)):
            for d, t in ((0, s), (1, steps - 1 - s)):
                a = gates[t, :, d]
                i, f, g, o = a.split(hid, -1)
                tc = tanh_cells[t, :, d]
                dc[d].add_(torch.mul(tc, tc, out=tmp).neg_().add_(1).mul_(o).mul_(dh[d]))  # h = o * tanh(c)
                torch.mul(dh[d], tc, out=do).mul_(torch.neg(o, out=tmp).add_(1).mul_(o))
                torch.mul(dc[d], torch.neg(i, out=tmp).add_(1).mul_(i).mul_(g), out=di)
                torch.mul(dc[d], torch.mul(g, g, out=tmp).neg_().add_(1).mul_(i), out=dg)
                if s > 0:
                    torch.mul(dc[d], torch.neg(f, out=tmp).add_(1).mul_(f).mul_(cells[t - 1 + 2 * d, :, d]), out=df)
                else:
                    df.zero_()  # the initial cell state is zero
                dc[d].mul_(f)
                a.copy_(d_gates)  # the activations at (t, d) are spent: keep the gate gradients in their place
                dh[d] = d_gates.mm(w_hh[d])
        d_w_hh = [gates[:, :, d].reshape(steps * m, 4 * hid).t().mm(states[d: steps + d, :, d].reshape(steps * m, hid))
                  for d in (0, 1)]
        gates = gates.view(steps * m, 8 * hid)
        d_w_ih = gates.t().mm(x.view(steps * m, d_in))
        d_b = gates.sum(0)
        dx = gates.mm(torch.cat([w_ih_f, w_ih_b])).view(steps, m, d_in) if ctx.needs_input_grad[0] else None
        return dx, d_w_ih[: 4 * hid], d_w_ih[4 * hid:], d_b[: 4 * hid], d_b[4 * hid:], d_w_hh[0], d_w_hh[1]


def bilstm_final_states(x: torch.Tensor, lstm: nn.LSTM) -> torch.Tensor:
    """[h_fwd; h_bwd] after a full pass of the one-layer bidirectional ``lstm`` over the time-major, contiguous
    sequences x [T, M, D] (zero initial states) -> [M, 2H]."""
    return _BiLSTMFinalStates.apply(
        x.contiguous(), lstm.weight_ih_l0, lstm.weight_ih_l0_reverse, lstm.bias_ih_l0 + lstm.bias_hh_l0,
        lstm.bias_ih_l0_reverse + lstm.bias_hh_l0_reverse, lstm.weight_hh_l0, lstm.weight_hh_l0_reverse)
