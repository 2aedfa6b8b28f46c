/* Embeds the flat restorer blob (built from restorer_blob.c) into ompi-cr-restore. */
    .section .rodata
    .balign 4096
    .globl ocr_restorer_blob_start
    .hidden ocr_restorer_blob_start
ocr_restorer_blob_start:
    .incbin BLOB_PATH
    .globl ocr_restorer_blob_end
    .hidden ocr_restorer_blob_end
ocr_restorer_blob_end:
    .section .note.GNU-stack,"",@progbits
