"""``befa train | eval | compare | extract-features | prepare | attribute | bench``: the BeFA command line."""

from __future__ import annotations

import argparse
import json
import sys

from common.cli import (
    add_device_argument,
    add_grid_arguments,
    add_reproduce_command,
    add_run_arguments,
    cli_logging,
    command_parser,
    run_cli,
)


def _config(args):
    from befa.config import load_config

    return load_config(args.config, data=args.data, run_name=args.run_name, epochs=args.epochs, device=args.device,
                       runs_dir=args.runs_dir, model=getattr(args, "model", None),
                       adapter=None if getattr(args, "adapter", None) is None else args.adapter == "on")


def _train(args) -> None:
    from befa.experiment import train_one
    from common.labels import data_banner
    from common.run_folder import check_run_directory, run_directory

    config = _config(args)
    run_dir = run_directory(config, args.resume)
    check_run_directory(run_dir, args.resume)
    result = train_one(config, run_dir, resume=args.resume)
    print(f"{config.model}{' + BeFA' if config.adapter else ''} on {config.dataset} — {data_banner(config.synthetic)}")
    print(json.dumps(result, indent=1))
    print(f"run directory: {run_dir}")


def _eval(args) -> None:
    from befa.evaluate import evaluate_checkpoint
    from common.labels import data_banner

    result = evaluate_checkpoint(args.checkpoint, data=args.data, device=args.device)
    if result["synthetic"]:
        print(data_banner(True))
    print(json.dumps(result, indent=1))


def _compare(args) -> None:
    from befa.experiment import compare

    result = compare(_config(args), resume=args.resume)
    print(result["table"])
    print(f"run directory: {result['run_dir']} (comparison.csv, comparison.png)")


def _grid(args) -> None:
    from befa.experiment import merge_grid, train_grid
    from common.errors import DataFormatError
    from common.labels import data_banner
    from common.run_folder import run_directory

    config = _config(args)
    if not config.run_name:
        raise DataFormatError(args.config, "befa grid needs --run-name (every shard and the merge share the run)")
    root = run_directory(config, args.resume) / f"{config.model}{'+befa' if config.adapter else ''}"
    if args.merge:
        best = merge_grid(config, root)
        name = f"{config.model}{' + BeFA' if config.adapter else ''}"
        print(f"{name} on {config.dataset} — {data_banner(config.synthetic)}")
        print(f"selected on valid: {json.dumps(best['point'])}; test {json.dumps(best['test'])}")
        print(f"grid results: {root / 'grid.json'}")
        return
    index, count = args.shard
    train_grid(config, root, args.resume, shard=(index, count))
    print(f"shard {index}/{count} done under {root}; select with: befa grid ... --merge")


def _extract(args) -> None:
    from befa.features import extract_features

    image, text = extract_features(args.items, args.clip_weights, args.out, batch_size=args.batch_size,
                                   device=args.device)
    print(f"wrote {image} and {text}")


def _prepare(args) -> None:
    from befa.prepare import prepare

    done = prepare(args.inter, args.items, args.images, args.out, clip_weights=args.clip_weights, seed=args.seed,
                   k_core=args.k_core, user_column=args.user_column, item_column=args.item_column,
                   text_columns=args.text_column, batch_size=args.batch_size, device=args.device)
    print(f"{done.out}: {done.n_users} users, {done.n_items} items, {done.n_interactions} interactions; "
          f"split: {done.split}")
    if not done.features:
        print(f"next, the 512-d CLIP features: befa extract-features --items {done.out} "
              f"--clip-weights ViT-B-32.pt --out {done.out}")


def _attribute(args) -> None:
    from befa.attribute import attribute

    result = attribute(args.checkpoint, args.items, args.clip_weights, args.item, args.out,
                       grid=(args.grid, args.grid), device=args.device)
    print(json.dumps(result, indent=1))


def _bench(args) -> None:
    from befa.bench import bench, report

    print(report(bench(n_users=args.n_users, n_items=args.n_items, models=args.models, device=args.device)))


def parser() -> argparse.ArgumentParser:
    from befa.config import BASE_MODELS

    p, sub = command_parser("befa", "BeFA (AAAI 2025) on VBPR, LATTICE, FREEDOM and MGCN.")

    t = sub.add_parser("train", help="train one base model, with or without the adapter")
    add_run_arguments(t, "configs/tmall.yaml")
    t.add_argument("--model", choices=BASE_MODELS, help="base model (overrides the config)")
    t.add_argument("--adapter", choices=("on", "off"), help="BeFA on or off (overrides the config)")
    t.set_defaults(func=_train)

    v = sub.add_parser("eval", help="evaluate a run's checkpoint (base or base + BeFA) on valid and test")
    v.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    v.add_argument("--data", help="dataset folder (default: the one the checkpoint was trained on)")
    add_device_argument(v)
    v.set_defaults(func=_eval)

    b = sub.add_parser("bench", help="seconds per epoch of every base model with and without BeFA")
    b.add_argument("--n-users", type=int, default=19_445)
    b.add_argument("--n-items", type=int, default=7_050)
    b.add_argument("--models", nargs="+", choices=BASE_MODELS, default=list(BASE_MODELS))
    add_device_argument(b)
    b.set_defaults(func=_bench)

    add_reproduce_command(sub, "befa", "an MMRec dataset folder; its name picks configs/<name>.yaml")

    c = sub.add_parser("compare", help="every model of the config's 'models' without and with BeFA; table")
    add_run_arguments(c, "configs/tmall.yaml")
    c.set_defaults(func=_compare)

    g = sub.add_parser("grid", help="one shard of the config's grid for one model (--shard i/N), or --merge")
    add_run_arguments(g, "configs/tmall.yaml")
    g.add_argument("--model", choices=BASE_MODELS, help="base model (overrides the config)")
    g.add_argument("--adapter", choices=("on", "off"), help="BeFA on or off (overrides the config)")
    add_grid_arguments(g)
    g.set_defaults(func=_grid)

    e = sub.add_parser("extract-features", help="CLIP ViT-B/32 image_feat.npy / text_feat.npy from items.tsv")
    e.add_argument("--items", required=True, help="folder with items.tsv (itemID, image, text) and the images")
    e.add_argument("--clip-weights", required=True, help="local ViT-B-32.pt (OpenAI CLIP)")
    e.add_argument("--out", required=True, help="dataset folder to write the .npy files to")
    e.add_argument("--batch-size", type=int, default=64)
    add_device_argument(e)
    e.set_defaults(func=_extract)

    r = sub.add_parser(
        "prepare", help="the paper's TMALL / MicroLens / H&M files (inter.csv, item.csv, images) -> MMRec folder",
        description="Reads the BeFA authors' layout: a comma-separated interaction file (userID/user_id, "
                    "itemID/item_id, optional x_label, timestamp, rating), an item file (item id and text: prod_info, "
                    "text, title or description) and a folder of <itemID>.jpg images. Writes <out>/<name>.inter "
                    "(ids re-indexed 0-based), items.tsv and the id mappings, and with --clip-weights the CLIP "
                    "image_feat.npy/text_feat.npy. Split: the file's x_label when it has one, otherwise MMRec's rule "
                    "(per user at random: n < 10 -> n-2/1/1 train/valid/test, else floor(0.2n) held out, half of it "
                    "valid; --seed).")
    r.add_argument("--inter", required=True, help="interaction file, e.g. inter.csv (MicroLens: inter_small.csv)")
    r.add_argument("--items", required=True, help="item file with the texts: item.csv (MicroLens: product_info.csv)")
    r.add_argument("--images", required=True, help="folder of <itemID>.jpg item images")
    r.add_argument("--out", required=True, help="dataset folder to create, data/<name> (holds <name>.inter)")
    r.add_argument("--clip-weights", help="local ViT-B-32.pt: also write the CLIP features (else prints the command)")
    r.add_argument("--seed", type=int, default=999, help="seed of MMRec's random split (files without x_label)")
    r.add_argument("--k-core", type=int, default=0, help="MMRec's k-core filter before that split (default 0: off)")
    r.add_argument("--user-column", help="user id column (default: userID, user_id or user)")
    r.add_argument("--item-column", help="item id column of both files (default: itemID, item_id or item)")
    r.add_argument("--text-column", nargs="+", help="item text column(s), joined (default: prod_info, text, title "
                                                    "or description)")
    r.add_argument("--batch-size", type=int, default=64, help="CLIP batch size")
    add_device_argument(r)
    r.set_defaults(func=_prepare)

    a = sub.add_parser("attribute", help="before/after-adapter attribution heatmap of one item")
    a.add_argument("--checkpoint", required=True, help="best.pt of a base + BeFA run (LATTICE, FREEDOM or MGCN)")
    a.add_argument("--items", required=True, help="folder with items.tsv and the item images")
    a.add_argument("--clip-weights", required=True, help="the ViT-B-32.pt the features were extracted with")
    a.add_argument("--item", type=int, required=True, help="item id")
    a.add_argument("--out", required=True, help="PNG to write (the highlighted text goes next to it as .md)")
    a.add_argument("--grid", type=int, default=4, help="patches per side")
    add_device_argument(a)
    a.set_defaults(func=_attribute)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli_logging()
    return run_cli(f"befa {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
