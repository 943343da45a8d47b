"""AR-LDM's character tokens and the extended CLIP positions: one token per name, only the new rows train."""

import torch

from storyimager.backbone import synthetic_words
from storyimager.train import build_model


def test_character_names_are_single_new_tokens_and_only_new_rows_train(config):
    model = build_model(config(max_length=85))
    tok = model.tokenizer
    ids = tok("pororo and crong", add_special_tokens=False).input_ids
    names = tok.convert_ids_to_tokens(ids)
    assert names[0] == "pororo" and names[-1] == "crong" and len(ids) == 3
    table = model.text_encoder.get_input_embeddings().weight
    positions = model.text_encoder.embeddings.position_embedding.weight
    assert positions.shape[0] == 85 and table.shape[0] == len(tok)
    states, _ = model.encode_text([["pororo is jumping in the park."] * 5])
    assert states.shape == (1, 5, 85, 32)
    states.sum().backward()
    new = set(range(len(tok) - len(model.config.characters), len(tok)))
    touched = {i for i in range(table.shape[0]) if table.grad[i].abs().sum() > 0}
    assert touched and touched <= new and tok.convert_tokens_to_ids("pororo") in touched
    assert torch.all(positions.grad[:77] == 0) and positions.grad[77:].abs().sum() > 0


def test_new_character_rows_start_from_a_standard_normal_and_apart(config):
    """AR-LDM's transformers 4.24 gave new rows a bare nn.Embedding's N(0, 1) init; transformers' mean resizing would
    start every name at the mean embedding (rows ~1e-5 apart), so the UNet could not tell the names apart."""
    model = build_model(config())
    table = model.text_encoder.get_input_embeddings().weight.detach()
    rows = table[-len(model.config.characters):]
    assert 0.8 < rows.std().item() < 1.2 and abs(rows.mean().item()) < 0.1
    assert torch.cdist(rows, rows).add(torch.eye(len(rows)) * 1e9).min() > 4.0  # ~sqrt(2 x 32) = 8 apart
    assert torch.equal(rows, build_model(config()).text_encoder.get_input_embeddings().weight.detach()[-len(rows):])


def test_no_position_rows_added_below_clip_length(config):
    model = build_model(config(max_length=24))
    assert model.text_encoder.embeddings.position_embedding.weight.shape[0] == 77
    assert not model.text_encoder.embeddings.position_embedding.weight.requires_grad


def test_every_caption_word_is_one_token_of_the_stand_in_tokenizer(config):
    """The stand-in's BPE merges are applied by rank, as CLIP's: each word's merges must build on the pieces the
    earlier words' merges leave (built left to right alone, "standing" came out as st/an/d/i/n/g)."""
    tok = build_model(config()).tokenizer
    pieces = {word: tok.convert_ids_to_tokens(tok(word, add_special_tokens=False).input_ids)
              for word in synthetic_words()}
    assert all(p == [f"{word}</w>"] for word, p in pieces.items()), pieces
    assert len(tok("pororo is standing in the snow.", add_special_tokens=False).input_ids) == 7
