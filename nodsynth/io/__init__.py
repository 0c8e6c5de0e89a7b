"""Everything that reads or writes: volume files (NIfTI / NRRD / MHA), DICOM series, SEG and SR,
case tables, atomic writes and the server's wire format. The input checks of every verb, batch op and
the server live here once."""
