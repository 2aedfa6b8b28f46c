/* ocr_ctx_capture: setjmp-like capture of a thread's callee-saved state into a
 * struct ocr_jmp_context (image_format.h). Returns 0 now; when the restorer blob later
 * resumes the context in a restored process, the same call returns 1 there.
 * Only callee-saved registers are needed: everything else is either dead across a call
 * (caller-saved) or, for threads stopped in the quiesce signal handler, held in the
 * kernel's signal frame on their stack, which rt_sigreturn restores in full. */
    .text
    .globl ocr_ctx_capture
    .hidden ocr_ctx_capture
    .type ocr_ctx_capture, @function
ocr_ctx_capture:
    mov %rbx, 0(%rdi)
    mov %rbp, 8(%rdi)
    mov %r12, 16(%rdi)
    mov %r13, 24(%rdi)
    mov %r14, 32(%rdi)
    mov %r15, 40(%rdi)
    lea 8(%rsp), %rdx
    mov %rdx, 48(%rdi)
    mov (%rsp), %rdx
    mov %rdx, 56(%rdi)
    stmxcsr 64(%rdi)
    fnstcw 68(%rdi)
    xor %eax, %eax
    ret
    .size ocr_ctx_capture, .-ocr_ctx_capture
    .section .note.GNU-stack,"",@progbits
