"""Read and write images: any supported file becomes an array plus geometry in array axis order.

Everything downstream of this package sees arrays of shape ``(C, z, y, x)`` and a :class:`Geometry`
whose spacing, origin and direction are in that same (z, y, x) order. 2D images are single-slice
volumes ``(C, 1, y, x)`` with a placeholder spacing of ``PLACEHOLDER_2D_SPACING`` along the first axis.
"""

from autounet.io.formats import SUPPORTED_EXTENSIONS, file_extension, is_2d_extension
from autounet.io.image import PLACEHOLDER_2D_SPACING, Geometry, Image
from autounet.io.readers import read_image, read_image_geometry
from autounet.io.writers import write_image

__all__ = [
    "Geometry",
    "Image",
    "PLACEHOLDER_2D_SPACING",
    "SUPPORTED_EXTENSIONS",
    "file_extension",
    "is_2d_extension",
    "read_image",
    "read_image_geometry",
    "write_image",
]
