"""Official checkpoints: the key map against the official names and shapes, the official forward pass against ours
after conversion, and ``convert`` / ``eval`` / ``train --init-from`` through the command line.

``official_shapes`` and ``official_forward`` are written here from reading the official code (``model/models.py``,
``Preprocessing.py``, ``GraphNN.py``, ``Attention.py``, ``AnswerDecoder.py``, ``utils.py``, ``fusions/fusions.py``),
not taken from ``dualvgr.official``: four GAT heads per graph, each with its own ``W`` and ``a`` over [Wh_i; Wh_j].
A narrow width keeps the tests fast; every layer's width follows ``module_dim`` in both codes.
"""

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from common.data.videoqa import load_vocab, videoqa_files
from dualvgr.cli import main
from dualvgr.model import DualVGR
from dualvgr.official import official_layout, to_ours
from dualvgr.train import initial_weights

DIM = 64


def _linear(name, fan_in, fan_out, bias=True):
    return {f"{name}.weight": (fan_out, fan_in), **({f"{name}.bias": (fan_out,)} if bias else {})}


def official_shapes(vocab, answers, units, vision, word, dim=DIM):
    """Name -> shape of the official ``DualVGR`` state dict (graph_module 'GAT', graph_layers 1)."""
    h, u = dim // 2, "visual_input_unit"
    shapes = {"linguistic_input_unit.encoder_embed.weight": (vocab, word)}
    for lstm, fan_in in (("linguistic_input_unit.concatRNN.rnn", word), ("linguistic_input_unit.encoder", word),
                         ("visual_appearance_input_unit.encoder", vision)):
        for d in ("", "_reverse"):
            shapes |= {f"{lstm}.weight_ih_l0{d}": (4 * h, fan_in), f"{lstm}.weight_hh_l0{d}": (4 * h, h),
                       f"{lstm}.bias_ih_l0{d}": (4 * h,), f"{lstm}.bias_hh_l0{d}": (4 * h,)}
    shapes |= _linear("visual_motion_input_unit", vision, dim)
    for i in range(units):
        shapes |= _linear(f"{u}.queryAttn.{i}.feat_enhance", dim, dim) | _linear(f"{u}.queryAttn.{i}.fc", dim, 1)
        for kind in ("appear", "motion"):
            shapes |= _linear(f"{u}.queryPunish_{kind}.{i}.query_weight", word, dim)
        for graph in ("appearance_GCN", "motion_GCN", "acGCN", "mcGCN"):
            for head in range(4):
                shapes |= _linear(f"{u}.{graph}.{i}.attention_{head}.W", dim, dim // 4)
                shapes |= _linear(f"{u}.{graph}.{i}.attention_{head}.a", dim // 2, 1)
        for kind in ("appearance", "motion"):
            shapes |= _linear(f"{u}.attention_{kind}.{i}.project.0", dim, dim)
            shapes |= _linear(f"{u}.attention_{kind}.{i}.project.2", dim, 1, bias=False)
    shapes |= _linear(f"{u}.visualfusion.linear0", dim, 512) | _linear(f"{u}.visualfusion.linear1", dim, 512)
    shapes |= _linear(f"{u}.visualfusion.linear_out", 256, dim)
    shapes |= _linear("feature_aggregation.v_proj", dim, dim, bias=False) | _linear("feature_aggregation.attn", dim, 1)
    shapes |= _linear("output_unit.question_proj", dim, dim) | _linear("output_unit.classifier.1", 2 * dim, dim)
    shapes |= {f"output_unit.classifier.3.{k}": (dim,) for k in ("weight", "bias", "running_mean", "running_var")}
    shapes["output_unit.classifier.3.num_batches_tracked"] = ()
    return shapes | _linear("output_unit.classifier.5", dim, answers)


def random_official(shapes, seed=0):
    """Random tensors of those shapes, scaled so no tanh, sigmoid or softmax saturates."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        t = torch.randn(shape, generator=g)
        if name.endswith("num_batches_tracked"):
            t = torch.tensor(7)
        elif name.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif len(shape) == 2 and "embed" not in name:
            t = t / shape[1] ** 0.5
        elif len(shape) == 1:
            t = 0.1 * t
        state[name] = t
    return state


def _lin(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def _lstm(sd, name, batch_first):
    """An ``nn.LSTM`` holding the official LSTM ``name``'s weights (the official modules are ``nn.LSTM`` too)."""
    w = sd[f"{name}.weight_ih_l0"]
    lstm = nn.LSTM(w.shape[1], w.shape[0] // 4, batch_first=batch_first, bidirectional=True)
    lstm.load_state_dict({k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")})
    return lstm


def _official_gat(sd, name, x, scores):
    """punishGAT in eval mode: per head Wh = W x, e_ij = LReLU_.01(a [Wh_i; Wh_j]), softmax_j, sum_j alpha_ij
    (Wh_j * s_j), ELU; heads concatenated."""
    heads = []
    for h in range(4):
        wh = _lin(sd, f"{name}.attention_{h}.W", x)
        b, n, d = wh.shape
        pairs = torch.cat([wh.repeat(1, 1, n).view(b, n * n, d), wh.repeat(1, n, 1)], dim=2).view(b, n, n, 2 * d)
        e = F.leaky_relu(_lin(sd, f"{name}.attention_{h}.a", pairs).squeeze(-1), 0.01)
        heads.append(F.elu(torch.bmm(e.softmax(-1), wh * scores)))
    return torch.cat(heads, dim=2)


@torch.no_grad()
def official_forward(sd, appearance, motion, question, length, units):
    """The official ``DualVGR.forward`` in eval mode, from the official state dict: the logits and each unit's
    common-space GAT outputs (acGCN, mcGCN), which the consistency loss reads (the view attention's output is
    symmetric in its two views, so the logits alone cannot tell common from specific)."""
    words = torch.tanh(F.embedding(question, sd["linguistic_input_unit.encoder_embed.weight"]))
    order = length.argsort(descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(words[order], length[order], batch_first=True)
    tokens = nn.utils.rnn.pad_packed_sequence(_lstm(sd, "linguistic_input_unit.concatRNN.rnn", True)(packed)[0],
                                              batch_first=True)[0][order.argsort()]
    tokens = F.pad(tokens, (0, 0, 0, question.size(1) - tokens.size(1)))
    packed = nn.utils.rnn.pack_padded_sequence(words, length, batch_first=True, enforce_sorted=False)
    h_n = _lstm(sd, "linguistic_input_unit.encoder", True)(packed)[1][0]
    sentence = torch.cat([h_n[0], h_n[1]], -1)
    b, n, frames, dim = appearance.shape
    clips = torch.tanh(appearance).transpose(0, 2).transpose(1, 2).reshape(frames, b * n, dim)
    h_n = _lstm(sd, "visual_appearance_input_unit.encoder", False)(clips)[1][0]
    app = torch.cat([h_n[0], h_n[1]], -1).view(b, n, -1)
    mot = _lin(sd, "visual_motion_input_unit", motion)
    mask = (torch.arange(question.size(1)) < length[:, None]).float()
    u, commons = "visual_input_unit", []
    for i in range(units):
        attn = _lin(sd, f"{u}.queryAttn.{i}.fc", F.normalize(_lin(sd, f"{u}.queryAttn.{i}.feat_enhance", tokens),
                                                            dim=-1)).squeeze(2).softmax(1) * mask
        attn = attn / (attn.sum(1, keepdim=True) + 1e-5)
        cue = torch.bmm(attn.unsqueeze(1), words).squeeze(1)
        fused, common_out = [], []
        for x, kind, specific, common, view in ((app, "appear", "appearance_GCN", "acGCN", "attention_appearance"),
                                                (mot, "motion", "motion_GCN", "mcGCN", "attention_motion")):
            query = _lin(sd, f"{u}.queryPunish_{kind}.{i}.query_weight", cue)
            scores = torch.sigmoid(torch.bmm(x, query.unsqueeze(2)))
            common_out.append(_official_gat(sd, f"{u}.{common}.{i}", x, scores))
            z = torch.stack([common_out[-1], _official_gat(sd, f"{u}.{specific}.{i}", x, scores)], dim=1)
            w = _lin(sd, f"{u}.{view}.{i}.project.2", torch.tanh(_lin(sd, f"{u}.{view}.{i}.project.0", z)))
            fused.append((w.softmax(1) * z).sum(1))
        app, mot = app + fused[0], mot + fused[1]
        commons.append(common_out)
    z = F.elu(_lin(sd, f"{u}.visualfusion.linear0", app)) * F.elu(_lin(sd, f"{u}.visualfusion.linear1", mot))
    video = F.elu(_lin(sd, f"{u}.visualfusion.linear_out", z.view(b, n, -1, 2).sum(-1)))
    rho = _lin(sd, "feature_aggregation.attn", F.elu(_lin(sd, "feature_aggregation.v_proj", video))).softmax(1)
    out = torch.cat([(rho * video).sum(1), _lin(sd, "output_unit.question_proj", sentence)], 1)
    out = F.elu(_lin(sd, "output_unit.classifier.1", out))
    bn = "output_unit.classifier.3"
    out = F.batch_norm(out, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"], sd[f"{bn}.bias"])
    return _lin(sd, "output_unit.classifier.5", out), commons


SIZES = {"vocab": 20, "answers": 7, "units": 2, "vision": 12, "word": 8}


def _model(vocab, answers, units, vision, word):
    torch.manual_seed(0)
    return DualVGR(vocab, answers, units, vision, DIM, word)


def test_the_key_map_takes_exactly_the_official_names_and_shapes_and_loads_strictly():
    model = _model(**SIZES)
    shapes = official_shapes(**SIZES)
    assert {k: shape for k, (shape, _) in official_layout(model).items()} == shapes
    model.load_state_dict(to_ours(random_official(shapes), model, "official.pt"), strict=True)


def test_every_official_value_lands_in_exactly_one_place_of_ours():
    """Distinct values in, the same multiset out: nothing dropped, duplicated or left at its initial value."""
    model = _model(**SIZES)
    shapes = official_shapes(**SIZES)
    counter, state = 0, {}
    for name, shape in shapes.items():
        size = torch.Size(shape).numel()
        state[name] = torch.arange(counter, counter + size, dtype=torch.float32).view(shape)
        counter += size
    state["output_unit.classifier.3.num_batches_tracked"] = torch.tensor(7)
    ours = to_ours(state, model, "official.pt")

    def values(tensors):
        return torch.cat([v.flatten() for v in tensors if v.is_floating_point()]).sort().values

    assert counter < 2**24 and torch.equal(values(ours.values()), values(state.values()))
    assert ours["head.classifier.3.num_batches_tracked"] == 7


def test_the_converted_model_gives_the_official_logits_and_common_graphs():
    """Our model after conversion against the official forward pass written from the official code (eval mode,
    two units, four heads per GAT): equal logits and common-space GAT outputs; with a_src and a_dst swapped the
    logits differ, so the test can fail."""
    model = _model(**SIZES).eval()
    official = random_official(official_shapes(**SIZES), seed=1)
    g = torch.Generator().manual_seed(2)
    length = torch.tensor([5, 2, 4])
    question = torch.randint(2, 20, (3, 6), generator=g) * (torch.arange(6) < length[:, None])
    inputs = torch.randn(3, 4, 5, 12, generator=g), torch.randn(3, 4, 12, generator=g), question, length
    expected, commons = official_forward(official, *inputs, units=2)
    ours = to_ours(official, model, "official.pt")
    model.load_state_dict(ours)
    with torch.no_grad():
        logits, trace = model(*inputs)
        assert (logits - expected).abs().max() < 1e-6, (logits - expected).abs().max()  # float32 noise: ~5e-8
        for ours_app, ours_mot, (app, mot) in zip(trace.common_app, trace.common_mot, commons, strict=True):
            assert torch.allclose(ours_app, app, atol=1e-6) and torch.allclose(ours_mot, mot, atol=1e-6)
        for gat in ("gat_app", "gat_common_mot"):
            src, dst = f"units.1.{gat}.attn_src", f"units.1.{gat}.attn_dst"
            model.load_state_dict({**ours, src: ours[dst], dst: ours[src]})
            assert (model(*inputs)[0] - expected).abs().max() > 1e-5


@pytest.fixture
def official_run(config, tmp_path):
    """A YAML config of a narrow, one-unit DualVGR on the tiny data (lr 0, so training keeps the weights), an
    official checkpoint of that size in the official trainer's layout (saved under nn.DataParallel: ``module.``),
    its official state dict and the state dict of ours it maps to."""
    values = {k: v for k, v in vars(config(module_dim=DIM, unit_layers=1, lr=0.0, epochs=1, batch_size=84)).items()
              if k not in ("run_name", "device")}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(values))
    vocab = load_vocab(videoqa_files(values["data"], "msvd-qa", "train").vocab)
    sizes = len(vocab["question_token_to_idx"]), len(vocab["answer_token_to_idx"]), 1, 48, 300
    state = random_official(official_shapes(*sizes), seed=3)
    official = tmp_path / "official_model.pt"
    kwargs = {"vision_dim": 48, "module_dim": DIM, "word_dim": 300, "num_of_nodes": 3, "graph_module": "GAT",
              "graph_layers": 1}
    torch.save({"epoch": 4, "state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {},
                "model_kwargs": kwargs}, official)
    return config_file, official, state, to_ours(state, _model(*sizes), official), vocab


def _one_error_line(capsys, *names):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dualvgr ") and all(name in err[0] for name in names), err


def test_convert_and_eval_read_the_official_trainer_layout(official_run, tmp_path, capsys):
    """``convert`` writes best.pt's layout with the mapped weights and the architecture read off them; ``eval``
    gives the same accuracy on the official file (detected by its keys) as on the converted one."""
    config_file, official, _, expected, vocab = official_run
    out = tmp_path / "converted.pt"
    assert main(["convert", "--official", str(official), "--out", str(out), "--config", str(config_file)]) == 0
    converted = torch.load(out, weights_only=False)
    assert converted.keys() == {"model", "config", "vocab", "epoch"}
    assert converted["vocab"] == vocab and converted["epoch"] == 5
    assert all(torch.equal(expected[k], v) for k, v in converted["model"].items())
    assert (converted["config"]["unit_layers"], converted["config"]["module_dim"]) == (1, DIM)
    capsys.readouterr()
    outputs = []
    for extra in (["--checkpoint", str(official), "--config", str(config_file)], ["--checkpoint", str(out)]):
        assert main(["eval", *extra, "--device", "cpu"]) == 0
        outputs.append(capsys.readouterr().out.split("\n{")[1])  # the accuracy JSON after the table
    assert outputs[0] == outputs[1]
    assert main(["eval", "--checkpoint", str(official)]) == 2  # an official file names no dataset
    _one_error_line(capsys, str(official), "--config")


@pytest.mark.parametrize("case", ["missing", "unused", "wrong shape"])
def test_convert_refuses_a_missing_unused_or_misshapen_key_in_one_line(official_run, tmp_path, capsys, case):
    """A bare state dict is accepted; each fault is exit 2 with one stderr line naming the key, and no file."""
    config_file, _, state, _, _ = official_run
    key = {"missing": "visual_input_unit.acGCN.0.attention_2.a.weight",
           "unused": "visual_input_unit.appearance_GCN.1.attention_0.W.weight",  # graph_layers 2 has these
           "wrong shape": "visual_input_unit.mcGCN.0.attention_1.a.weight"}[case]
    broken = dict(state)
    if case == "missing":
        del broken[key]
    elif case == "unused":
        broken[key] = torch.zeros(DIM // 4, DIM)
    else:
        broken[key] = broken[key].t()
    bare = tmp_path / "bare.pt"
    torch.save(broken, bare)
    command = ["convert", "--official", str(bare), "--out", str(tmp_path / "x.pt"), "--config", str(config_file)]
    assert main(command) == 2  # an exception escaping main would fail the test: no traceback either
    _one_error_line(capsys, str(bare), key, case)
    assert not (tmp_path / "x.pt").exists()


def test_train_init_from_an_official_checkpoint_starts_a_new_run_from_its_weights(official_run, tmp_path, capsys):
    """At lr 0 the run's weights stay the official ones (BatchNorm statistics aside, which training updates);
    a converted checkpoint gives the same start; --init-from with --resume is refused in one line."""
    config_file, official, _, expected, vocab = official_run
    args = ["train", "--config", str(config_file), "--device", "cpu", "--init-from", str(official)]
    assert main([*args, "--run-name", "init"]) == 0
    run = tmp_path / "runs" / "msvd-qa" / "init"
    weights = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["trainer"]["model"]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert all(torch.equal(expected[k], v) for k, v in weights.items() if not k.endswith(buffers))
    assert not torch.equal(expected["head.classifier.3.running_mean"], weights["head.classifier.3.running_mean"])
    converted = tmp_path / "converted.pt"
    assert main(["convert", "--official", str(official), "--out", str(converted), "--config", str(config_file)]) == 0
    model = _model(len(vocab["question_token_to_idx"]), len(vocab["answer_token_to_idx"]), 1, 48, 300)
    assert all(torch.equal(expected[k], v) for k, v in initial_weights(converted, model, vocab).items())
    capsys.readouterr()
    assert main([*args, "--resume", "--run-name", "init"]) == 2
    _one_error_line(capsys, str(official), "--resume")
