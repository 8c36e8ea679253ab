"""``autounet predict -i IN -o OUT -m MODEL``: segment every image of a folder with a trained model (a folder, a
package ``.zip``, or a model on an ``autounet serve`` server with ``--server URL``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from autounet.cli.common import add_progress_option
from autounet.inference.export import OUTPUT_FORMATS

#: Options that only make sense for a model loaded here; with --server the server's loaded model decides them.
LOCAL_ONLY = {"configurations": "-c", "checkpoint": "--checkpoint", "device": "--device",
              "tile_batch_size": "--tile-batch-size"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment a folder of images with a trained model",
        description="Segment every case of IN (MSD 4D files, nnU-Net v2 CASE_0000 channel files, 2D images, or DICOM "
        "series: one sub-folder per case, or loose files grouped by series) and write the label maps to OUT in each "
        "input's format and geometry, or as DICOM Segmentations of DICOM input. Defaults come from "
        'MODEL/inference.json ("autounet find-best") when it exists, or from the package\'s manifest.',
    )
    parser.add_argument("-i", "--input", dest="input_dir", type=Path, required=True, help="folder of images")
    parser.add_argument("-o", "--output", dest="output_dir", type=Path, required=True, help="folder for the results")
    parser.add_argument("-m", "--model", dest="model", required=True,
                        help="RESULTS/<dataset> folder, a package NAME.zip (autounet export-model), or with --server "
                        "the model's name on the server")
    parser.add_argument("--server", default=None, help="URL of an autounet serve server to predict on, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key-file", type=Path, default=None,
                        help="with --server: file holding the API key (default: $AUTOUNET_API_KEY if set)")
    parser.add_argument("-c", "--configurations", nargs="+", default=None, help="configuration(s) to average, e.g. 3d_fullres or 2d 3d_fullres")
    parser.add_argument("-f", "--folds", nargs="+", default=None, help="folds to average: 0 1 2 3 4 or all (default: every trained fold)")
    parser.add_argument("--checkpoint", choices=["final", "best", "latest"], default=None, help="default final (a package: the one exported)")
    parser.add_argument("--step-size", type=float, default=None, help="tile step as a fraction of the patch (default 0.5)")
    parser.add_argument("--no-mirroring", dest="mirroring", action="store_false", default=None, help="no test-time mirroring (about 8x faster in 3D)")
    parser.add_argument("--save-probabilities", action="store_true", help="also write CASE.npz with the class probabilities")
    parser.add_argument("--save-uncertainty", action="store_true", help="write uncertainty/CASE_entropy (and CASE_disagreement for several folds)")
    parser.add_argument("--continue", dest="skip_finished", action="store_true", help="skip cases whose outputs are complete")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--no-postprocess", dest="postprocess", action="store_false", help="do not apply postprocessing.json")
    parser.add_argument("--tile-batch-size", type=int, default=None, help="tiles per forward pass (default: about 1M voxels)")
    parser.add_argument("--file-ending", default=None, help="only read input files ending with this, e.g. .nii.gz")
    parser.add_argument("--workers", type=int, default=None,
                        help="cases in flight: 0 one after the other, 1 overlap reading/writing with the network, N>=2 N "
                        "cases at a time (default: one per core for small images on the CPU, else 1); with --server: "
                        "requests in flight (default 1)")
    dicom = parser.add_argument_group("DICOM")
    dicom.add_argument("--output-format", choices=OUTPUT_FORMATS, default="auto",
                       help="nifti: an image file (.nii.gz for DICOM input); dicom-seg: CASE.dcm, a DICOM Segmentation of "
                       "the source series; both; auto (default): dicom-seg for DICOM input, else nifti")
    dicom.add_argument("--seg-type", choices=["binary", "labelmap"], default="binary",
                       help="DICOM Segmentation type: binary (default, widest viewer support) or labelmap")
    dicom.add_argument("--segment-codes", type=Path, default=None, metavar="JSON",
                       help='SNOMED codes per label, e.g. {"liver": {"category": ["91723000", "SCT", "Anatomical '
                       'Structure"], "type": ["10200004", "SCT", "Liver"]}} (default: from the label names)')
    dicom.add_argument("--dicom-channels", default=None, metavar="NAME=PATTERN,...",
                       help="which series is which channel, by a glob on SeriesDescription, e.g. T2=*T2*,ADC=*ADC* "
                       "(default: dicom_channels of the model's dataset.json)")
    dicom.add_argument("--dicom-resample", action="store_true",
                       help="resample series with irregular slice gaps or gantry tilt onto a regular grid instead of "
                       "refusing them")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return _run_on_server(args)
    from autounet.dicom.cases import parse_channel_map
    from autounet.dicom.codes import read_segment_codes
    from autounet.dicom.seg_writer import SegOptions
    from autounet.inference import Predictor
    from autounet.inference.export import OutputOptions
    from autounet.locks import folder_lock
    from autounet.packaging import opened_model
    from autounet.separate_folders import require_separate_output

    seg = SegOptions(seg_type=args.seg_type, user_codes=read_segment_codes(args.segment_codes) if args.segment_codes else None)
    output_options = OutputOptions(args.output_format, seg, dicom_resample=args.dicom_resample)
    require_separate_output(args.output_dir, {"-i": args.input_dir})  # before the slow model load
    with folder_lock(args.output_dir, "autounet predict"), opened_model(args.model) as model:
        options = model.predictor_options(configurations=args.configurations, folds=args.folds, checkpoint=args.checkpoint)
        predictor = Predictor.from_model_folder(
            model.folder,
            device=args.device or "auto",
            postprocessing="auto" if args.postprocess else None,
            step_size=0.5 if args.step_size is None else args.step_size,
            mirroring=args.mirroring is not False,
            tile_batch_size=args.tile_batch_size,
            **options,
        )
        print(f"model: {predictor.describe()}; post-processing: {predictor.postprocessing.describe() if predictor.postprocessing else 'off'}")
        report = predictor.predict_folder(
            args.input_dir,
            args.output_dir,
            file_ending=args.file_ending,
            dicom_channels=parse_channel_map(args.dicom_channels),
            output_options=output_options,
            save_probabilities=args.save_probabilities,
            save_uncertainty=args.save_uncertainty,
            skip_finished=args.skip_finished,
            workers=args.workers,
            progress=args.progress,
        )
    print(report.summary())
    return 0 if report.ok else 1


def _run_on_server(args: argparse.Namespace) -> int:
    given = [flag for name, flag in LOCAL_ONLY.items() if getattr(args, name) is not None]
    if not args.postprocess:
        given.append("--no-postprocess")
    given += [flag for flag, value in (("--output-format", args.output_format != "auto"), ("--seg-type", args.seg_type != "binary"),
                                       ("--segment-codes", args.segment_codes), ("--dicom-channels", args.dicom_channels),
                                       ("--dicom-resample", args.dicom_resample)) if value]
    if given:
        raise ValueError(f"{', '.join(given)} cannot be used with --server: the server's loaded model decides them; "
                         "drop them (or predict locally with -m MODEL_FOLDER)")
    try:
        from autounet.client import Client
    except ImportError as err:
        raise ValueError(f"{err.name or err} is not installed; predicting on a server needs the serve extra: "
                         'pip install "autounet[serve]"') from None
    key = args.api_key_file.read_text(encoding="utf-8").strip() if args.api_key_file else os.environ.get("AUTOUNET_API_KEY")
    with Client(args.server, api_key=key or None) as client:
        report = client.predict_folder(
            args.input_dir, args.output_dir, args.model, file_ending=args.file_ending, skip_finished=args.skip_finished,
            workers=args.workers or 1, progress=args.progress, folds=args.folds, mirroring=args.mirroring,
            step_size=args.step_size, probabilities=args.save_probabilities or None,
            uncertainty=args.save_uncertainty or None,
        )
    print(f"model: {args.model} on {args.server}")
    print(report.summary())
    return 0 if report.ok else 1
