"""The three on-disk story formats reach the model as [5, 3, R, R] frames in [-1, 1] with their captions."""

import pytest
import torch

from common.errors import DataFormatError
from common.synthetic import story as synthetic_story
from storyimager.data import collate, story_dataset


@pytest.mark.parametrize("layout", ["arldm", "pororo", "flintstones"])
def test_each_format_gives_resized_signed_frames(config, tmp_path, layout):
    root = synthetic_story.write(tmp_path / layout, seed=1, layout=layout, n_episodes=6, size=24)
    characters = None if layout != "flintstones" else ["fred", "barney", "wilma", "betty", "pebbles", "dino", "slate"]
    cfg = config(data=str(root), data_format=layout, **({"characters": characters} if characters else {}))
    data = story_dataset(cfg, "train")
    batch = collate([data[0], data[1]])
    assert batch["images"].shape == (2, 5, 3, 16, 16) and batch["images"].dtype == torch.float32
    assert -1 <= batch["images"].min() and batch["images"].max() <= 1
    assert len(batch["captions"]) == 2 and all(len(c) == 5 and all(isinstance(s, str) for s in c)
                                                for c in batch["captions"])
    assert batch["labels"].shape[:2] == (2, 5)
    raw = story_dataset(cfg, "train", raw=True)[0]["images"]
    assert raw.dtype == torch.uint8 and raw.shape == (5, 3, 24, 24)


def test_folder_without_one_h5_file_is_an_error(config, tmp_path):
    with pytest.raises(DataFormatError, match="one AR-LDM .h5"):
        story_dataset(config(data=str(tmp_path)), "train")
