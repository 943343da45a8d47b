"""DAMSM encoders, strict loading of AttnGAN-layout files, and the DAMSM losses against hand / reference values."""

import math

import pytest
import torch
import torch.nn.functional as F

from common.errors import DataFormatError, WeightsNotFoundError
from denet.damsm import CNN_ENCODER, RNN_ENCODER, func_attention, load_damsm, sent_loss, words_loss

N_WORDS = 20


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return CNN_ENCODER(256).eval()


def _strip_counters(state):
    """AttnGAN's files predate BatchNorm's num_batches_tracked; save the same way."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_rnn_encoder_shapes_init_and_sentence_code():
    torch.manual_seed(0)
    rnn = RNN_ENCODER(N_WORDS).eval()
    assert rnn.nhidden == 128 and rnn.rnn.hidden_size == 128 and rnn.rnn.bidirectional and rnn.rnn.batch_first
    assert rnn.encoder.weight.shape == (N_WORDS, 300) and rnn.encoder.weight.abs().max() <= 0.1
    h0, c0 = rnn.init_hidden(3)
    assert h0.shape == c0.shape == (2, 3, 128) and not h0.any() and not c0.any()
    captions = torch.randint(1, N_WORDS, (3, 7))
    lens = torch.tensor([4, 6, 2])  # unsorted on purpose
    words, sent = rnn(captions, lens, rnn.init_hidden(3))
    assert words.shape == (3, 256, 6) and sent.shape == (3, 256)  # T = longest caption
    for b, n in enumerate(lens.tolist()):
        assert not words[b, :, n:].any()  # padding is zero
        torch.testing.assert_close(sent[b, :128], words[b, :128, n - 1])  # forward direction ends at the last word
        torch.testing.assert_close(sent[b, 128:], words[b, 128:, 0])  # backward direction ends at the first word
    order = torch.tensor([1, 0, 2])  # the official code needs length-sorted batches; results must agree
    words_s, sent_s = rnn(captions[order], lens[order])
    torch.testing.assert_close(sent_s, sent[order])
    torch.testing.assert_close(words_s, words[order])


def test_cnn_encoder_shapes_and_frozen_trunk(cnn):
    with torch.no_grad():
        features, code = cnn(torch.rand(2, 3, 64, 64) * 2 - 1)
        features1, code1 = cnn(torch.rand(1, 3, 32, 48))
    assert features.shape == (2, 256, 17, 17) and code.shape == (2, 256)
    assert features1.shape == (1, 256, 17, 17) and code1.shape == (1, 256)
    trainable = {n for n, p in cnn.named_parameters() if p.requires_grad}
    assert trainable == {"emb_features.weight", "emb_cnn_code.weight", "emb_cnn_code.bias"}
    assert cnn.emb_features.bias is None and cnn.emb_features.weight.shape == (256, 768, 1, 1)
    assert cnn.emb_features.weight.abs().max() <= 0.1 and cnn.emb_cnn_code.weight.abs().max() <= 0.1
    assert not hasattr(cnn, "fc") and not hasattr(cnn, "AuxLogits")


def test_cnn_trunk_from_local_torchvision_file(tmp_path):
    from common.metrics.fid import write_random_torchvision_inception_weights

    path = write_random_torchvision_inception_weights(tmp_path / "inception_v3_google-0cc3c7bd.pth")
    net = CNN_ENCODER(inception_weights=path)
    file = torch.load(path, weights_only=True)
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight", "Mixed_6e.branch7x7_1.bn.running_var"):
        torch.testing.assert_close(net.state_dict()[key], file[key])
    with pytest.raises(WeightsNotFoundError, match="inception_weights"):
        CNN_ENCODER(inception_weights=tmp_path / "absent.pth")


def test_official_keys_and_strict_round_trip(tmp_path, cnn):
    torch.manual_seed(1)
    rnn = RNN_ENCODER(N_WORDS).eval()
    text_state, image_state = rnn.state_dict(), cnn.state_dict()
    assert set(text_state) == {"encoder.weight"} | {f"rnn.{w}_l0{s}" for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                              "bias_hh") for s in ("", "_reverse")}
    assert text_state["rnn.weight_ih_l0"].shape == (512, 300) and text_state["rnn.weight_hh_l0_reverse"].shape == (
        512, 128)
    for key in ("emb_features.weight", "emb_cnn_code.weight", "emb_cnn_code.bias", "Conv2d_1a_3x3.conv.weight",
                "Mixed_7c.branch_pool.conv.weight", "Mixed_6e.branch_pool.bn.running_mean"):
        assert key in image_state
    assert not any(k.startswith(("fc.", "AuxLogits.")) for k in image_state)
    torch.save(_strip_counters(text_state), tmp_path / "text_encoder200.pth")
    torch.save(_strip_counters(image_state), tmp_path / "image_encoder200.pth")
    text_enc, image_enc = load_damsm(tmp_path / "text_encoder200.pth", tmp_path / "image_encoder200.pth", N_WORDS)
    assert not text_enc.training and not image_enc.training
    assert not any(p.requires_grad for p in [*text_enc.parameters(), *image_enc.parameters()])
    for key, value in text_enc.state_dict().items():
        torch.testing.assert_close(value, text_state[key])
    for key, value in image_enc.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, image_state[key])
    captions, lens = torch.randint(1, N_WORDS, (2, 5)), torch.tensor([5, 3])
    torch.testing.assert_close(text_enc(captions, lens), rnn(captions, lens))


def test_missing_and_wrong_files_give_one_line_errors(tmp_path):
    torch.manual_seed(2)
    with pytest.raises(WeightsNotFoundError) as err:
        load_damsm(tmp_path / "text_encoder200.pth", tmp_path / "image_encoder200.pth", N_WORDS)
    msg = str(err.value)
    assert "\n" not in msg and "text_encoder" in msg and "DAMSMencoder/text_encoder200.pth" in msg
    assert "text_encoder100.pth" in msg and "DF-GAN" in msg

    torch.save(RNN_ENCODER(N_WORDS).state_dict(), tmp_path / "text.pth")
    with pytest.raises(DataFormatError) as err:  # vocabulary of another dataset
        load_damsm(tmp_path / "text.pth", tmp_path / "image.pth", N_WORDS + 1)
    msg = str(err.value)
    assert "\n" not in msg and "text.pth" in msg and "encoder.weight" in msg and "[20, 300]" in msg

    state = RNN_ENCODER(N_WORDS).state_dict()
    state["module.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(DataFormatError, match=r"extra\.pth: .*unexpected key\(s\), e\.g\. module\.extra"):
        load_damsm(tmp_path / "extra.pth", tmp_path / "image.pth", N_WORDS)

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError, match=r"junk\.pth: not a readable torch state dict"):
        load_damsm(tmp_path / "junk.pth", tmp_path / "image.pth", N_WORDS)

    with pytest.raises(WeightsNotFoundError, match="image_encoder"):  # text file fine, image file absent
        load_damsm(tmp_path / "text.pth", tmp_path / "image_encoder200.pth", N_WORDS)


def test_sent_loss_hand_checked():
    cnn_code = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rnn_code = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    labels = torch.arange(3)
    # cos[i, j] (image i, text j): [[1, 1, 0], [0, 0, 1], [r, r, r]] with r = 1/sqrt(2); scores = 10 cos.
    # class_ids [1, 2, 1]: (0, 2) and (2, 0) are same-class mismatches -> -inf.
    r10 = 10 / math.sqrt(2)
    rows = [math.log(2), math.log(2 + math.exp(10)), math.log(2)]  # -log softmax(row i)[i]
    cols = [math.log(1 + math.exp(-10)),  # column 0: [10, 0, -inf]
            math.log(math.exp(10) + 1 + math.exp(r10)),  # column 1: [10, 0, r10], target 0
            math.log(math.exp(10) + math.exp(r10)) - r10]  # column 2: [-inf, 10, r10]
    loss0, loss1 = sent_loss(cnn_code, rnn_code, labels, [1, 2, 1])
    assert loss0.item() == pytest.approx(sum(rows) / 3, rel=1e-6)
    assert loss1.item() == pytest.approx(sum(cols) / 3, rel=1e-6)
    # without class ids (0, 2) and (2, 0) count: row 0 becomes [10, 10, 0], row 2 [r10, r10, r10]
    loss0, _ = sent_loss(cnn_code, rnn_code, labels, None)
    rows[0], rows[2] = math.log(2 + math.exp(-10)), math.log(3)
    assert loss0.item() == pytest.approx(sum(rows) / 3, rel=1e-6)
    assert sent_loss(cnn_code, rnn_code, None, None) == (None, None)
    single = sent_loss(cnn_code[:1], rnn_code[:1], torch.zeros(1, dtype=torch.long), None)  # batch 1 stays 2-D
    assert single[0].item() == pytest.approx(0.0)


def _reference_words_loss(img, words, lens, class_ids, g1, g2, g3):
    """Straightforward per (image j, caption i, word) version of AttnGAN Eq. 7-13."""
    batch, dim = img.shape[:2]
    regions = img.reshape(batch, dim, -1)
    scores = torch.zeros(batch, batch, dtype=img.dtype)
    for j in range(batch):
        ctx = regions[j].t()  # [S, D]
        for i in range(batch):
            w = words[i, :, : lens[i]].t()  # [L, D]
            a = torch.softmax(ctx @ w.t(), dim=1)  # [S, L], normalised over words
            b = torch.softmax(g1 * a.t(), dim=1)  # [L, S], normalised over regions
            c = b @ ctx  # [L, D]
            total = sum(math.exp(g2 * F.cosine_similarity(w[k], c[k], dim=0).item()) for k in range(lens[i]))
            scores[j, i] = g3 * math.log(total)
    for i in range(batch):
        for j in range(batch):
            if i != j and class_ids[i] == class_ids[j]:
                scores[i, j] = float("-inf")

    def ce(s):
        return sum(-torch.log_softmax(s[k], 0)[k] for k in range(batch)) / batch

    return ce(scores), ce(scores.t())


def test_words_loss_matches_reference():
    torch.manual_seed(3)
    batch, dim = 4, 6
    img = torch.randn(batch, dim, 3, 3, dtype=torch.float64)
    words = torch.randn(batch, dim, 5, dtype=torch.float64)
    lens = torch.tensor([5, 2, 4, 3])
    class_ids = [7, 3, 7, 1]
    for g1, g2, g3 in ((4.0, 5.0, 10.0), (1.0, 2.0, 3.0)):
        loss0, loss1, maps = words_loss(img, words, torch.arange(batch), lens, class_ids, g1, g2, g3)
        ref0, ref1 = _reference_words_loss(img, words, lens.tolist(), class_ids, g1, g2, g3)
        torch.testing.assert_close(loss0, ref0)
        torch.testing.assert_close(loss1, ref1)
    assert [m.shape for m in maps] == [(1, n, 3, 3) for n in lens.tolist()]
    torch.testing.assert_close(maps[1].sum(dim=(2, 3)), torch.ones(1, 2, dtype=torch.float64))
    img.requires_grad_(True)
    loss0, loss1, _ = words_loss(img, words, torch.arange(batch), lens, None)
    (loss0 + loss1).backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


def test_func_attention_normalisation_and_broadcast():
    torch.manual_seed(4)
    query, context = torch.randn(2, 8, 3), torch.randn(2, 8, 4, 5)
    weighted, attn = func_attention(query, context, 4.0)
    assert weighted.shape == (2, 8, 3) and attn.shape == (2, 3, 4, 5)
    torch.testing.assert_close(attn.sum(dim=(2, 3)), torch.ones(2, 3))
    one, _ = func_attention(query[:1], context, 4.0)  # a single caption against every image
    torch.testing.assert_close(one[0], weighted[0])
