"""Graph products A @ X (Eqs. 3, 9, 10) whose backward reuses a stored CSR of A^T.

For a CSR ``A``, autograd's backward of ``torch.sparse.mm(A, X)`` turns the transposed view of ``A``
back into CSR, a sort of all its nonzeros, at every call: six sorts of 70k-245k entries per MGCN batch.
``graph_product`` with ``A^T`` built once runs the same kernel on the same CSR, so gradients are
bitwise those of autograd's path (tested). It is the default on the CPU, where it was measured; on
other devices the plain ``torch.sparse.mm`` runs.
"""

from __future__ import annotations

import torch


class _StoredTransposeProduct(torch.autograd.Function):
    """A @ X; backward A^T @ dL/dY with the given A^T (no gradient for the graphs)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, torch.sparse.mm(ctx.adj_t, grad)


def transpose_csr(adj: torch.Tensor) -> torch.Tensor:
    """A^T as CSR, columns sorted within each row (what autograd builds from A's transposed view)."""
    return adj.to_sparse_coo().t().coalesce().to_sparse_csr()


def graph_product(adj: torch.Tensor, dense: torch.Tensor, adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """``adj @ dense``; on the CPU with ``adj_t`` given, the backward multiplies by ``adj_t``."""
    if adj_t is not None and adj.device.type == "cpu":
        return _StoredTransposeProduct.apply(adj, adj_t, dense)
    return torch.sparse.mm(adj, dense)
