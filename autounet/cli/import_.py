"""``autounet import --images DIR --masks DIR -o OUT``: make a dataset from folders of 2D images and masks."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="make a dataset from a folder of 2D images and a folder of masks",
        description="Pair images and masks by case name, map mask values to labels 0..K and write an nnU-Net v2 "
        "layout dataset (PNG, one grey file per channel) that every autounet stage reads. Example (DRIVE): "
        "autounet import --images DRIVE/training/images --masks DRIVE/training/1st_manual "
        "--roi-masks DRIVE/training/mask --label-names background,vessel -o DRIVE_imported",
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of images (PNG, TIFF, BMP, GIF, JPEG)")
    parser.add_argument("--masks", type=Path, required=True, help="folder of label masks")
    parser.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
    parser.add_argument("--name", default=None, help="dataset name (default: the output folder name)")
    parser.add_argument("--image-pattern", default=None, help="image file name with a {case} placeholder, e.g. '{case}_training.tif' (default: guessed)")
    parser.add_argument("--mask-pattern", default=None, help="mask file name with a {case} placeholder, e.g. '{case}_manual1.gif' (default: guessed)")
    parser.add_argument("--map-values", action="append", default=None, metavar="SRC:DST[,SRC:DST]",
                        help="map mask values to labels, e.g. 255:1 or 0:1,255:0 (repeatable; default: 0/255 masks -> 0/1)")
    parser.add_argument("--label-names", type=_names, default=None, help="names of labels 0,1,..., e.g. background,vessel")
    parser.add_argument("--channel-names", type=_names, default=None, help="one name per image channel, e.g. R,G,B (default: grey or R,G,B)")
    parser.add_argument("--test-images", type=Path, default=None, help="folder of unlabelled images, written to imagesTs/")
    parser.add_argument("--test-pattern", default=None, help="test image file name with a {case} placeholder")
    parser.add_argument("--roi-masks", type=Path, default=None, help="folder of field-of-view masks, stored as roiTr/CASE.png (0/1)")
    parser.add_argument("--roi-pattern", default=None, help="ROI mask file name with a {case} placeholder")
    parser.add_argument("--zero-outside-roi", action="store_true", help="also set image pixels outside the ROI to 0")
    transfer = parser.add_mutually_exclusive_group()
    transfer.add_argument("--copy", dest="link", action="store_false", help="copy files that need no conversion (default)")
    transfer.add_argument("--link", dest="link", action="store_true", help="symlink files that need no conversion")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run, link=False)


def run(args: argparse.Namespace) -> int:
    from autounet.dataset.importer import import_2d_dataset, parse_value_map

    result = import_2d_dataset(
        args.images, args.masks, args.output, name=args.name, image_pattern=args.image_pattern,
        mask_pattern=args.mask_pattern, map_values=parse_value_map(args.map_values) if args.map_values else None,
        label_names=args.label_names, channel_names=args.channel_names, test_images=args.test_images,
        test_pattern=args.test_pattern, roi_masks=args.roi_masks, roi_pattern=args.roi_pattern,
        zero_outside_roi=args.zero_outside_roi, link=args.link, overwrite=args.overwrite, workers=args.workers,
        progress=args.progress,
    )
    print(f"imported {result.num_training} training and {result.num_test} test case(s) into {result.output}")
    print(f"  paired {result.image_pattern!r} with {result.mask_pattern!r}")
    print(f"  channels: {', '.join(result.channel_names)}; labels: "
          + ", ".join(f"{v} {n}" for n, v in result.labels.items()))
    if result.value_map:
        print("  mask values mapped: " + ", ".join(f"{k} -> {v}" for k, v in result.value_map.items()))
    for note in result.notes:
        print(f"  note: {note}")
    for what, files in (("image", result.unpaired_images), ("mask", result.unpaired_masks)):
        if files:
            print(f"  {len(files)} {what}(s) without a partner, not imported: {', '.join(p.name for p in files)}")
    print(f'next: autounet check "{result.output}"')
    return 0
