"""Graph products with a stored transpose against torch.sparse.mm and dense references."""

import numpy as np
import scipy.sparse as sp
import torch

from mvgcn.graphs import user_item_graph
from mvgcn.sparse import graph_product, transpose_csr

G = torch.Generator().manual_seed(0)


def random_csr(rows: int, cols: int, nnz: int) -> torch.Tensor:
    index = torch.stack([torch.randint(0, rows, (nnz,), generator=G), torch.randint(0, cols, (nnz,), generator=G)])
    coo = torch.sparse_coo_tensor(index, torch.rand(nnz, generator=G), (rows, cols), check_invariants=True)
    return coo.coalesce().to_sparse_csr()


def test_transpose_csr_is_the_dense_transpose():
    adj = random_csr(30, 20, 90)
    assert torch.equal(transpose_csr(adj).to_dense(), adj.to_dense().T)


def test_normalised_user_item_graph_is_its_own_transpose_exactly():
    """MGCN passes A_hat as its own transpose; that needs the CSR arrays, not only the values, to agree."""
    r = sp.random(40, 25, density=0.2, format="csr", random_state=np.random.default_rng(0))
    r.data[:] = 1.0
    adj = user_item_graph(r)[0].to_sparse_csr()
    adj_t = transpose_csr(adj)
    for part in ("crow_indices", "col_indices", "values"):
        assert torch.equal(getattr(adj, part)(), getattr(adj_t, part)()), part


def test_graph_product_and_gradient_equal_torch_sparse_mm():
    adj = random_csr(50, 30, 200)
    grad = torch.randn(50, 8, generator=G)
    x = torch.randn(30, 8, generator=G, requires_grad=True)
    want = torch.sparse.mm(adj, x)
    want.backward(grad)
    want_grad, x.grad = x.grad, None
    got = graph_product(adj, x, transpose_csr(adj))
    got.backward(grad)
    assert torch.equal(got, want)
    assert torch.equal(x.grad, want_grad)
    assert torch.allclose(x.grad, adj.to_dense().T @ grad, atol=1e-6)
