/* 16-bit real mode, reached by switching down from the Multiboot 32-bit
 * entry: 16-bit protected-mode segments, CR0.PE cleared, a far jump into
 * real mode at 0000:4000 (the code is copied below 1 MiB). There it checks
 * segment:offset addressing, a software interrupt through the real-mode
 * IVT, 32-bit operands with the 0x66 prefix and the stack, prints to COM1
 * with 16-bit code, and exits through the debug-exit port. */
#define COM1      0x3F8
#define RM_BASE   0x4000
#define R(x)      ((x) - rm_start + RM_BASE)
#define IVT_0x80  (0x80 * 4)

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl $stack_top, %esp
	cmpl $0x2BADB002, %eax
	jne fail32
	movl $msg_hello, %esi
	call puts32

	/* Copy the real-mode part below 1 MiB. */
	movl $rm_start, %esi
	movl $RM_BASE, %edi
	movl $rm_end - rm_start, %ecx
	rep movsb
	/* IVT entry 0x80 -> 0000:R(rm_int80). */
	movw $R(rm_int80), IVT_0x80
	movw $0, IVT_0x80 + 2

	lgdt gdt_desc
	ljmp $0x20, $RM_BASE        /* 16-bit protected mode, base 0 */

fail32:
	movl $msg_fail32, %esi
	call puts32
	movb $0x11, %al
	outb %al, $0xF4
1:	hlt
	jmp 1b

puts32:
	lodsb
	testb %al, %al
	jz 2f
	movw $COM1, %dx
	outb %al, %dx
	jmp puts32
2:	ret

/* ---- copied to RM_BASE ---- */
	.code16
rm_start:
	movw $0x28, %ax             /* 16-bit data segments, 64 KiB limits */
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl %cr0, %eax
	andl $~1, %eax
	movl %eax, %cr0
	ljmp $0x0000, $R(rm_real)

rm_real:
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw $RM_BASE - 16, %sp
	lidt R(rm_idt_desc)

	movw $R(msg_real), %si
	call rm_puts

	/* CR0.PE really is clear. */
	movl %cr0, %eax
	testb $1, %al
	jnz rm_fail

	/* Segment arithmetic: 1234:0010 and 1000:2350 are both 0x12350. */
	movw $0x1234, %ax
	movw %ax, %es
	movw $0xBEEF, %es:0x10
	movw $0x1000, %ax
	movw %ax, %fs
	cmpw $0xBEEF, %fs:0x2350
	jne rm_fail

	/* A software interrupt through the IVT. */
	movb $0, R(int80_hits)
	movw $0x1111, %bx
	int $0x80
	cmpb $1, R(int80_hits)
	jne rm_fail
	cmpw $0x2222, %bx
	jne rm_fail

	/* 32-bit operand size in real mode. */
	movl $0x89ABCDEF, %eax
	roll $8, %eax
	cmpl $0xABCDEF89, %eax
	jne rm_fail
	/* Stack. */
	pushw $0x1234
	pushl $0x56789ABC
	popl %ecx
	popw %dx
	cmpl $0x56789ABC, %ecx
	jne rm_fail
	cmpw $0x1234, %dx
	jne rm_fail
	cmpw $RM_BASE - 16, %sp
	jne rm_fail

	movw $R(msg_pass), %si
	call rm_puts
	movb $0x10, %al
	outb %al, $0xF4
3:	hlt
	jmp 3b

rm_fail:
	movw $R(msg_fail), %si
	call rm_puts
	movb $0x11, %al
	outb %al, $0xF4
4:	hlt
	jmp 4b

rm_int80:
	incb %cs:R(int80_hits)
	addw %bx, %bx
	iret

rm_puts:
	lodsb
	testb %al, %al
	jz 5f
	movw $COM1, %dx
	outb %al, %dx
	jmp rm_puts
5:	ret

rm_idt_desc:
	.word 0x3FF
	.long 0
int80_hits: .byte 0
msg_real:   .asciz "real mode: running at 0000:4000\n"
msg_pass:   .asciz "PASS\n"
msg_fail:   .asciz "FAIL: real-mode check failed\n"
rm_end:

	.section .rodata
msg_hello:  .asciz "16-bit real mode test (switching down from 32-bit)\n"
msg_fail32: .asciz "FAIL: bad multiboot magic\n"

	.section .data
	.balign 8
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF    /* 0x08 */
	.quad 0x00CF92000000FFFF    /* 0x10 */
	.quad 0
	.quad 0x00009A000000FFFF    /* 0x20: 16-bit code, base 0 */
	.quad 0x000092000000FFFF    /* 0x28: 16-bit data, base 0 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.balign 16
	.skip 4096
stack_top:
