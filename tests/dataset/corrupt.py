"""Build small datasets from real cases and break them in one known way each (the bad-input corpus).

Every helper takes a dataset folder made by :func:`copy_msd_cases` (or :func:`to_nnunet_v2`) and a case id, changes
exactly one thing with SimpleITK or plain bytes, and returns the file it changed, so a test can assert that
``autounet check`` names that file.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

#: Four real Hippocampus cases: small (about 35 x 50 x 35), mixed dtypes (uint8 and float32 images).
HIPPOCAMPUS_CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006")
ENDING = ".nii.gz"


def copy_msd_cases(source: Path, target: Path, case_ids=HIPPOCAMPUS_CASES, rename: dict[str, str] | None = None) -> Path:
    """Copy ``case_ids`` of an MSD dataset into a new MSD-layout folder with its own ``dataset.json``.

    ``rename`` maps a case id to a new file stem (e.g. one with spaces or non-ASCII characters).
    """
    rename = rename or {}
    description = json.loads((source / "dataset.json").read_text())
    training = []
    for case_id in case_ids:
        stem = rename.get(case_id, case_id)
        for folder in ("imagesTr", "labelsTr"):
            (target / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / folder / f"{case_id}{ENDING}", target / folder / f"{stem}{ENDING}")
        training.append({"image": f"./imagesTr/{stem}{ENDING}", "label": f"./labelsTr/{stem}{ENDING}"})
    description.update(numTraining=len(training), numTest=0, training=training, test=[])
    (target / "dataset.json").write_text(json.dumps(description, indent=2, ensure_ascii=False), encoding="utf-8")
    return target


def image_file(root: Path, case_id: str) -> Path:
    nnunet = root / "imagesTr" / f"{case_id}_0000{ENDING}"
    return nnunet if nnunet.exists() else root / "imagesTr" / f"{case_id}{ENDING}"


def label_file(root: Path, case_id: str) -> Path:
    return root / "labelsTr" / f"{case_id}{ENDING}"


def edit_dataset_json(root: Path, change: Callable[[dict], None]) -> Path:
    path = root / "dataset.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def rewrite(path: Path, change: Callable[[sitk.Image], sitk.Image]) -> Path:
    """Read ``path`` with SimpleITK, apply ``change`` and write it back in place."""
    image = change(sitk.ReadImage(str(path)))
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def _with_array(image: sitk.Image, array: np.ndarray) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result


# --- one corruption each -------------------------------------------------------------------------------------


def delete_label(root: Path, case_id: str) -> Path:
    label_file(root, case_id).unlink()
    return label_file(root, case_id)


def delete_image(root: Path, case_id: str) -> Path:
    """The label stays: a label without image."""
    path = image_file(root, case_id)
    path.unlink()
    return path


def flip_label_direction(root: Path, case_id: str) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        direction = np.array(image.GetDirection()).reshape(3, 3)
        direction[:, 2] *= -1  # mirror the slice axis
        image.SetDirection(tuple(direction.ravel()))
        return image

    return rewrite(label_file(root, case_id), change)


def set_label_spacing(root: Path, case_id: str, factor: float = 1.5) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        image.SetSpacing(tuple(s * f for s, f in zip(image.GetSpacing(), (factor, 1.0, 1.0))))
        return image

    return rewrite(label_file(root, case_id), change)


def shift_label_origin(root: Path, case_id: str, shift_mm: float = 3.0) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        image.SetOrigin(tuple(o + shift_mm for o in image.GetOrigin()))
        return image

    return rewrite(label_file(root, case_id), change)


def set_spacing(root: Path, case_id: str, spacing: tuple[float, float, float]) -> Path:
    """Same (x, y, z) spacing for image and label: consistent but possibly implausible."""
    for path in (label_file(root, case_id), image_file(root, case_id)):
        rewrite(path, lambda image: (image.SetSpacing(spacing), image)[1])
    return image_file(root, case_id)


def put_nans(root: Path, case_id: str, count: int = 5) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        array = sitk.GetArrayFromImage(image).astype(np.float32)
        array.ravel()[:count] = np.nan
        array.ravel()[-1] = np.inf
        return _with_array(image, array)

    return rewrite(image_file(root, case_id), change)


def add_label_value(root: Path, case_id: str, value: int = 7) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        array = sitk.GetArrayFromImage(image).copy()
        array[0, 0, :3] = value
        return _with_array(image, array)

    return rewrite(label_file(root, case_id), change)


def make_label_fractional(root: Path, case_id: str) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        array = sitk.GetArrayFromImage(image).astype(np.float32)
        array[array == 1] = 0.5  # what linear interpolation of a label map produces
        return _with_array(image, array)

    return rewrite(label_file(root, case_id), change)


def truncate(path: Path, keep_fraction: float = 0.6) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep_fraction)])
    return path


def truncate_image(root: Path, case_id: str) -> Path:
    return truncate(image_file(root, case_id))


def drop_gzip_trailer(root: Path, case_id: str) -> Path:
    """Cut only the last 4 bytes (the stored size): the voxels are all there but the stream is incomplete."""
    path = label_file(root, case_id)
    path.write_bytes(path.read_bytes()[:-4])
    return path


def make_2d(root: Path, case_id: str) -> Path:
    """Replace image and label by their middle slice stored as 2D NIfTI files."""
    for path in (image_file(root, case_id), label_file(root, case_id)):
        rewrite(path, lambda image: image[:, :, image.GetSize()[2] // 2])
    return image_file(root, case_id)


def set_num_training(root: Path, value: int) -> Path:
    return edit_dataset_json(root, lambda data: data.update(numTraining=value))


def make_zero_size(root: Path, case_id: str) -> Path:
    """Set the NIfTI header's slice count to 0, as a failed export leaves it (ITK would read one slice)."""
    path = image_file(root, case_id)
    header = bytearray(gzip.decompress(path.read_bytes()))
    dims = list(struct.unpack("<8h", header[40:56]))
    dims[3] = 0
    header[40:56] = struct.pack("<8h", *dims)
    path.write_bytes(gzip.compress(bytes(header)))
    return path


def swap_label_axes(root: Path, case_id: str) -> Path:
    """Transpose the label's in-plane axes: a shape mismatch (the classic x/y confusion of exporters)."""
    def change(image: sitk.Image) -> sitk.Image:
        array = np.ascontiguousarray(np.swapaxes(sitk.GetArrayFromImage(image), 1, 2))
        result = sitk.GetImageFromArray(array)
        result.SetSpacing(image.GetSpacing())
        result.SetOrigin(image.GetOrigin())
        result.SetDirection(image.GetDirection())
        return result

    return rewrite(label_file(root, case_id), change)


def empty_label(root: Path, case_id: str) -> Path:
    return rewrite(label_file(root, case_id), lambda image: image * 0)


def blank_image(root: Path, case_id: str) -> Path:
    return rewrite(image_file(root, case_id), lambda image: image * 0)


def add_stray_label_file(root: Path, stem: str = "hippocampus_999") -> Path:
    """A label file in labelsTr that no dataset.json entry refers to."""
    source = next((root / "labelsTr").iterdir())
    target = root / "labelsTr" / f"{stem}{ENDING}"
    shutil.copyfile(source, target)
    return target


def to_nnunet_v2(root: Path, target: Path) -> Path:
    """Rewrite an MSD-layout copy as nnU-Net v2 layout (``CASE_0000.nii.gz``, ``channel_names``, name -> value)."""
    description = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    for entry in description["training"]:
        stem = Path(entry["image"]).name[: -len(ENDING)]
        (target / "imagesTr").mkdir(parents=True, exist_ok=True)
        (target / "labelsTr").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / entry["image"], target / "imagesTr" / f"{stem}_0000{ENDING}")
        shutil.copyfile(root / entry["label"], target / "labelsTr" / f"{stem}{ENDING}")
    v2 = {
        "name": description["name"],
        "channel_names": description["modality"],
        "labels": {name: int(value) for value, name in description["labels"].items()},
        "numTraining": len(description["training"]),
        "file_ending": ENDING,
    }
    (target / "dataset.json").write_text(json.dumps(v2, indent=2), encoding="utf-8")
    return target


def add_channel(root: Path, channels: int = 2) -> None:
    """nnU-Net v2: declare ``channels`` channels and give every case a copy of channel 0 as each extra channel."""
    for path in sorted((root / "imagesTr").glob(f"*_0000{ENDING}")):
        for c in range(1, channels):
            shutil.copyfile(path, path.with_name(path.name.replace("_0000", f"_{c:04d}")))
    edit_dataset_json(root, lambda data: data.update(channel_names={str(c): f"MRI{c}" for c in range(channels)}))


def delete_channel_file(root: Path, case_id: str, channel: int = 1) -> Path:
    path = root / "imagesTr" / f"{case_id}_{channel:04d}{ENDING}"
    path.unlink()
    return path


def make_label_vector(root: Path, case_id: str) -> Path:
    """Store the label as a 3-component (RGB-like) image: a wrong pixel type for a label map."""
    return rewrite(label_file(root, case_id), lambda image: sitk.Compose(image, image, image))


def add_extra_channel_file(root: Path, case_id: str, channel: int = 1) -> Path:
    """nnU-Net v2: a channel file beyond the channels dataset.json declares."""
    target = root / "imagesTr" / f"{case_id}_{channel:04d}{ENDING}"
    shutil.copyfile(root / "imagesTr" / f"{case_id}_0000{ENDING}", target)
    return target


def make_image_complex(root: Path, case_id: str) -> Path:
    """Store the image with complex voxels (a wrong dtype: FFT output saved by mistake)."""
    def change(image: sitk.Image) -> sitk.Image:
        real = sitk.Cast(image, sitk.sitkFloat32)
        return sitk.RealAndImaginaryToComplex(real, real)

    return rewrite(image_file(root, case_id), change)


def make_image_vector(root: Path, case_id: str) -> Path:
    """Store the image as a 3-component (RGB-like) image where one channel is declared."""
    return rewrite(image_file(root, case_id), lambda image: sitk.Compose(image, image, image))


def make_label_float64(root: Path, case_id: str) -> Path:
    """Store the label as float64 holding whole numbers (a different but harmless dtype)."""
    return rewrite(label_file(root, case_id), lambda image: sitk.Cast(image, sitk.sitkFloat64))


def add_negative_label(root: Path, case_id: str) -> Path:
    def change(image: sitk.Image) -> sitk.Image:
        array = sitk.GetArrayFromImage(image).astype(np.int16)
        array[0, 0, :3] = -1
        return _with_array(image, array)

    return rewrite(label_file(root, case_id), change)
