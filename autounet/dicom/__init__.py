"""DICOM in, DICOM-SEG out: read scanner series (pydicom), write Segmentations (highdicom) with a geometry proof."""
