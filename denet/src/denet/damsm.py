"""DAMSM text and image encoders and the DAMSM matching losses (Xu et al., AttnGAN, CVPR 2018).

Written from ``tobran/DE-Net:code/models/DAMSM.py`` (``RNN_ENCODER``, ``CNN_ENCODER``; the same as AttnGAN's
``code/model.py``) and ``taoxugit/AttnGAN:code/miscc/losses.py`` (``sent_loss``, ``words_loss``) with
``code/GlobalAttention.py`` (``func_attention``). Attribute names equal the official ones, so AttnGAN's / DF-GAN's
``text_encoder*.pth`` and ``image_encoder*.pth`` state dicts load strictly. Defaults of the losses are the
``code/cfg/DAMSM/{bird,coco}.yml`` values (``TRAIN.SMOOTH``: GAMMA1 4, GAMMA2 5, GAMMA3 10).

Differences from the official code, none of which changes a value:
- the LSTM gets ``dropout=0`` when ``nlayers == 1`` (torch ignores it there and only warns);
- captions need not be sorted by length (``enforce_sorted=False``; outputs stay in input order);
- ``hidden`` defaults to ``init_hidden(batch)``;
- ``CNN_ENCODER`` honours ``nef`` (the official one hard-codes 256) and resizes with ``F.interpolate``
  (``align_corners=False``, as DE-Net's code writes it explicitly);
- the losses take the gammas as arguments instead of reading a global config, accept ``class_ids`` as a tensor,
  array or list, and never ``squeeze`` a batch of one away.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from common.errors import DataFormatError, WeightsNotFoundError
from common.io import read_state_dict

EPS = 1e-8  # clamp of the norm products in AttnGAN's cosine similarities
INIT_RANGE = 0.1  # uniform init of the word embedding and the two image embedding layers
INPUT_SIZE = 299
TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
         "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
         "Mixed_7a", "Mixed_7b", "Mixed_7c")
DAMSM_SOURCE = (
    "DF-GAN's metadata zip for the dataset, linked from tobran/DF-GAN's README (data/birds/DAMSMencoder/"
    "text_encoder200.pth for CUB, data/coco/DAMSMencoder/text_encoder100.pth for COCO, image_encoder*.pth beside "
    "them), or AttnGAN's DAMSM release (taoxugit/AttnGAN README)"
)


# ------------------------------------------------------------------------------------------------ encoders
class RNN_ENCODER(nn.Module):  # noqa: N801 - official name
    """Word embedding (300-d, dropout) -> bi-LSTM; ``forward`` gives words [B, nhidden, T] and sentence [B, nhidden].

    ``nhidden`` is the total width (``nhidden // 2`` per direction when bidirectional). T is the longest caption
    length in the batch (``pad_packed_sequence``), padded positions are zero. The sentence code is the last hidden
    state of each direction, concatenated (forward first).
    """

    def __init__(self, ntoken: int, ninput: int = 300, drop_prob: float = 0.5, nhidden: int = 256,
                 nlayers: int = 1, bidirectional: bool = True) -> None:
        super().__init__()
        self.ntoken, self.ninput, self.drop_prob, self.nlayers = ntoken, ninput, drop_prob, nlayers
        self.bidirectional = bidirectional
        self.rnn_type = "LSTM"
        self.num_directions = 2 if bidirectional else 1
        self.nhidden = nhidden // self.num_directions  # per direction, as upstream
        self.encoder = nn.Embedding(ntoken, ninput)
        self.drop = nn.Dropout(drop_prob)
        self.rnn = nn.LSTM(ninput, self.nhidden, nlayers, batch_first=True,
                           dropout=drop_prob if nlayers > 1 else 0.0, bidirectional=bidirectional)
        self.init_weights()

    def init_weights(self) -> None:
        """Embedding uniform in [-0.1, 0.1]; the LSTM keeps torch's default init (as upstream)."""
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)

    def init_hidden(self, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h0, c0), each [nlayers * num_directions, bsz, nhidden per direction], on the parameters' device."""
        weight = next(self.parameters())
        shape = (self.nlayers * self.num_directions, bsz, self.nhidden)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(self, captions: torch.Tensor, cap_lens: torch.Tensor | Sequence[int],
                hidden: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if hidden is None:
            hidden = self.init_hidden(captions.size(0))
        lengths = torch.as_tensor(cap_lens).detach().to("cpu", torch.int64)
        emb = self.drop(self.encoder(captions))
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        output, (h_n, _) = self.rnn(packed, hidden)
        output = pad_packed_sequence(output, batch_first=True)[0]
        words_emb = output.transpose(1, 2)  # [B, nhidden * dirs, T]
        sent_emb = h_n.transpose(0, 1).contiguous().view(-1, self.nhidden * self.num_directions)
        return words_emb, sent_emb


def _inception_modules(weights: str | Path | None, key: str, init_weights: bool) -> dict[str, nn.Module]:
    """The 16 trunk blocks of torchvision's Inception-v3: ImageNet weights from a local file, or random."""
    if weights is not None:
        from common.metrics.fid import load_torchvision_inception  # strict, with one-line errors

        wrapped = load_torchvision_inception(weights, key=key)
        blocks = [m for m in wrapped.trunk if not isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d))]
        if len(blocks) != len(TRUNK):  # guard against a change of the shared wrapper
            raise RuntimeError(f"expected {len(TRUNK)} Inception blocks, found {len(blocks)}")
        return dict(zip(TRUNK, blocks))
    from torchvision.models import inception_v3

    # what upstream's `models.inception_v3()` builds: truncated-normal convs, BatchNorm weight 1 / bias 0
    net = inception_v3(weights=None, aux_logits=False, init_weights=init_weights)
    return {name: getattr(net, name) for name in TRUNK}


class CNN_ENCODER(nn.Module):  # noqa: N801 - official name
    """Inception-v3 trunk -> (region features [B, nef, 17, 17] from Mixed_6e, image code [B, nef]).

    Input: images of any size, resized bilinearly to 299 (``align_corners=False``); no ImageNet normalisation is
    applied (DF-GAN feeds its [-1, 1] images directly). The trunk is frozen (``requires_grad=False``, as upstream);
    only ``emb_features`` (1x1 conv 768 -> nef, no bias) and ``emb_cnn_code`` (Linear 2048 -> nef) train; their
    weights start uniform in [-0.1, 0.1] (the Linear bias keeps torch's default). The trunk's BatchNorms still
    follow ``train()`` / ``eval()``.

    ``inception_weights``: a local copy of torchvision's ``inception_v3_google-0cc3c7bd.pth`` (loaded strictly);
    ``None`` gives a random trunk (tests, or before loading a DAMSM ``image_encoder*.pth``). ``init_weights=False``
    skips the random trunk init when the weights are overwritten right after. ``input_size`` (official 299) is
    the side images are resized to; the final pool is a global average, which at 299 is the official 8x8 pool.
    """

    def __init__(self, nef: int = 256, inception_weights: str | Path | None = None,
                 weights_key: str = "inception_weights", init_weights: bool = True,
                 input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.nef, self.input_size = nef, input_size
        for name, module in _inception_modules(inception_weights, weights_key, init_weights).items():
            module.requires_grad_(False)
            self.add_module(name, module)
        self.emb_features = nn.Conv2d(768, nef, kernel_size=1, stride=1, padding=0, bias=False)
        self.emb_cnn_code = nn.Linear(2048, nef)
        self.init_trainable_weights()

    def init_trainable_weights(self) -> None:
        nn.init.uniform_(self.emb_features.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.uniform_(self.emb_cnn_code.weight, -INIT_RANGE, INIT_RANGE)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed_6e features [B, 768, 17, 17] (at 299 px) and the pooled Mixed_7c features [B, 2048]."""
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        for name in TRUNK[:3]:
            x = getattr(self, name)(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 147 -> 73
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 71 -> 35
        for name in TRUNK[5:13]:  # Mixed_5b .. Mixed_6e
            x = getattr(self, name)(x)
        features = x  # [B, 768, 17, 17] at 299 px
        for name in TRUNK[13:]:  # Mixed_7a .. Mixed_7c
            x = getattr(self, name)(x)
        return features, x.mean(dim=(2, 3))  # official avg_pool2d(kernel 8) over the 8x8 map at 299 px

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, pooled = self.trunk(x)
        return self.emb_features(features), self.emb_cnn_code(pooled)


# ------------------------------------------------------------------------------------------------ loading
def load_state_dict_strict(module: nn.Module, path: str | Path, key: str, what: str) -> nn.Module:
    """Load ``path`` into ``module`` strictly; every problem is one ``DataFormatError`` line naming file and key.

    A missing file raises ``WeightsNotFoundError(key, path, DAMSM_SOURCE)``. BatchNorm ``num_batches_tracked``
    may be absent (AttnGAN's files predate it; torch fills it in).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(key, path, DAMSM_SOURCE)
    state = read_state_dict(path)
    expected = module.state_dict()
    required = {k for k in expected if not k.endswith(".num_batches_tracked")}
    missing, unexpected = sorted(required - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [f"{len(names)} {kind} key(s), e.g. {names[0]}"
                 for kind, names in (("missing", missing), ("unexpected", unexpected)) if names]
        raise DataFormatError(path, f"not a DAMSM {what} state dict ({'; '.join(parts)})")
    for name, value in state.items():
        if value.shape != expected[name].shape:
            raise DataFormatError(path, f"DAMSM {what} key {name} has shape {list(value.shape)}, expected "
                                        f"{list(expected[name].shape)}")
    module.load_state_dict(state, strict=True)
    return module


def load_damsm(text_path: str | Path, image_path: str | Path, n_words: int, nef: int = 256,
               text_key: str = "text_encoder", image_key: str = "image_encoder",
               input_size: int = INPUT_SIZE) -> tuple[RNN_ENCODER, CNN_ENCODER]:
    """AttnGAN/DF-GAN pretrained DAMSM encoders from local files: strict, frozen, eval mode (as DF-GAN uses them).

    ``n_words`` is the vocabulary size of the dataset's ``captions_DAMSM.pickle`` (a different value shows up as a
    shape error on ``encoder.weight``). ``text_key`` / ``image_key`` are the config keys named in errors.
    """
    text_encoder = RNN_ENCODER(n_words, nhidden=nef)
    load_state_dict_strict(text_encoder, text_path, text_key, "text encoder")
    image_encoder = CNN_ENCODER(nef, init_weights=False, input_size=input_size)
    load_state_dict_strict(image_encoder, image_path, image_key, "image encoder")
    for net in (text_encoder, image_encoder):
        net.requires_grad_(False)
        net.eval()
    return text_encoder, image_encoder


def write_random_damsm(folder: str | Path, n_words: int, seed: int = 0) -> tuple[Path, Path]:
    """RANDOM DAMSM ``text_encoder.pth`` / ``image_encoder.pth`` in AttnGAN's format (plain state dicts) in
    ``folder``, for tests and timings; the caller's RNG state is left untouched."""
    from common.io import atomic_save

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text, image = folder / "text_encoder.pth", folder / "image_encoder.pth"
        atomic_save(RNN_ENCODER(n_words).state_dict(), text)
        atomic_save(CNN_ENCODER().state_dict(), image)
    return text, image


# ------------------------------------------------------------------------------------------------ losses
def _class_mask(class_ids, batch_size: int, device: torch.device) -> torch.Tensor | None:
    """[B, B] bool, True where j != i but image j has the same class as i (mismatches that are not negatives)."""
    if class_ids is None:
        return None
    ids = torch.as_tensor(np.asarray(class_ids) if not torch.is_tensor(class_ids) else class_ids).to(device)
    if ids.numel() != batch_size:
        raise ValueError(f"class_ids has {ids.numel()} entries for a batch of {batch_size}")
    ids = ids.reshape(-1)
    same = ids[:, None] == ids[None, :]
    return same & ~torch.eye(batch_size, dtype=torch.bool, device=device)


def _ce_both_ways(scores: torch.Tensor, labels, mask: torch.Tensor | None):
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    if labels is None:
        return None, None
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.t(), labels)


def sent_loss(cnn_code: torch.Tensor, rnn_code: torch.Tensor, labels: torch.Tensor | None, class_ids=None,
              gamma3: float = 10.0, eps: float = EPS) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Sentence-level DAMSM loss (AttnGAN Eq. 11-13 with the global codes).

    scores[i, j] = gamma3 * cos(cnn_code[i], rnn_code[j]) (norm product clamped at ``eps``); entries (i, j != i)
    with ``class_ids[i] == class_ids[j]`` are set to -inf; returns the cross-entropies of the rows (image -> texts,
    ``loss0``) and of the columns (text -> images, ``loss1``) against ``labels`` (normally ``arange(B)``), or
    ``(None, None)`` when ``labels`` is None.
    """
    norms = cnn_code.norm(dim=1, keepdim=True) * rnn_code.norm(dim=1, keepdim=True).t()
    scores = cnn_code @ rnn_code.t() / norms.clamp(min=eps) * gamma3
    return _ce_both_ways(scores, labels, _class_mask(class_ids, scores.size(0), scores.device))


def func_attention(query: torch.Tensor, context: torch.Tensor, gamma1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """AttnGAN's word -> region attention (Eq. 7-9).

    query [B or 1, D, L] (words), context [B, D, ih, iw] (regions). s = context^T query [B, S, L] is softmaxed over
    the words, then ``gamma1 * s`` is softmaxed over the regions. Returns the region context of each word [B, D, L]
    and the attention [B, L, ih, iw].
    """
    batch, _, ih, iw = context.shape
    context = context.reshape(batch, context.size(1), ih * iw)  # [B, D, S]
    attn = torch.matmul(context.transpose(1, 2), query).softmax(dim=2)  # [B, S, L], over words
    attn = (attn.transpose(1, 2) * gamma1).softmax(dim=2)  # [B, L, S], over regions
    weighted = torch.matmul(context, attn.transpose(1, 2))  # [B, D, L]
    return weighted, attn.reshape(batch, -1, ih, iw)


def words_loss(img_features: torch.Tensor, words_emb: torch.Tensor, labels: torch.Tensor | None,
               cap_lens: torch.Tensor | Sequence[int], class_ids=None, gamma1: float = 4.0, gamma2: float = 5.0,
               gamma3: float = 10.0, eps: float = EPS):
    """Word-level DAMSM loss (AttnGAN Eq. 9-13).

    img_features [B, D, 17, 17] (``CNN_ENCODER`` region features), words_emb [B, D, T], cap_lens [B].
    For caption i with L_i words and every image j: c = ``func_attention(words_i, img_j, gamma1)``,
    R(j, i) = log(sum_w exp(gamma2 * cos(word_w, c_w))) (norm product clamped at ``eps``); scores = gamma3 * R with
    the same-class mask of :func:`sent_loss`. Returns ``(loss0, loss1, att_maps)``; ``att_maps[i]`` is caption i's
    attention on its own image, [1, L_i, 17, 17]. The captions are looped over (one batched attention against
    all images each), since their lengths differ; this keeps the padding out of every softmax and sum.
    """
    batch = img_features.size(0)
    lengths = [int(n) for n in torch.as_tensor(cap_lens).reshape(-1).tolist()]
    columns, att_maps = [], []
    for i, n_words in enumerate(lengths):
        word = words_emb[i : i + 1, :, :n_words]  # [1, D, L_i], broadcast over the images
        weighted, attn = func_attention(word, img_features, gamma1)
        att_maps.append(attn[i : i + 1])
        cos = (word * weighted).sum(1) / (word.norm(dim=1) * weighted.norm(dim=1)).clamp(min=eps)  # [B, L_i]
        columns.append(torch.log(torch.exp(cos * gamma2).sum(dim=1, keepdim=True)))  # [B, 1]
    scores = torch.cat(columns, dim=1) * gamma3  # [images, captions]
    loss0, loss1 = _ce_both_ways(scores, labels, _class_mask(class_ids, batch, scores.device))
    return loss0, loss1, att_maps
