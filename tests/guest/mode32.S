/* 32-bit protected mode without long mode: the Multiboot entry state
 * (flat segments, paging off), our own GDT, 32-bit arithmetic, and
 * two-level 4 KiB paging with an alias mapping (virtual 4 MiB + x ->
 * physical x) checked by writing through one and reading the other. */
#define COM1 0x3F8

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl $stack_top, %esp
	cmpl $0x2BADB002, %eax
	jne fail
	movl $msg_hello, %esi
	call puts

	/* Multiboot entry state: protected mode on, paging off. */
	movl %cr0, %eax
	testl $1, %eax
	jz fail
	testl $0x80000000, %eax
	jnz fail

	lgdt gdt_desc
	ljmp $0x08, $1f
1:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss

	/* 32-bit arithmetic and flags. */
	movl $0x12345678, %eax
	bswap %eax
	cmpl $0x78563412, %eax
	jne fail
	movl $0xFFFFFFFF, %eax
	addl $1, %eax
	jnc fail                 /* carry out of bit 31 */
	jnz fail
	movl $7, %eax
	movl $6, %ecx
	mull %ecx
	cmpl $42, %eax
	jne fail

	/* Paging: PDE 0 and PDE 1 both point to one identity page table. */
	movl $page_table, %edi
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $12, %eax
	orl $3, %eax
	movl %eax, (%edi,%ecx,4)
	incl %ecx
	cmpl $1024, %ecx
	jb 2b
	movl $page_table + 3, %eax
	movl %eax, page_dir
	movl %eax, page_dir + 4
	movl $page_dir, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	jmp 3f
3:	movl $0xC0FFEE00, probe + 0x400000   /* through the alias */
	cmpl $0xC0FFEE00, probe              /* visible at the identity address */
	jne fail
	movl $0x0BADF00D, probe
	cmpl $0x0BADF00D, probe + 0x400000
	jne fail
	movl $msg_paging, %esi
	call puts

	movl $msg_pass, %esi
	call puts
	movb $0x10, %al
	outb %al, $0xF4
4:	hlt
	jmp 4b

fail:
	movl $msg_fail, %esi
	call puts
	movb $0x11, %al
	outb %al, $0xF4
5:	hlt
	jmp 5b

/* puts(esi): polls LSR.THRE (bounded) before each byte. */
puts:
	pushl %eax
	pushl %ecx
	pushl %edx
6:	lodsb
	testb %al, %al
	jz 8f
	movb %al, %ah
	movl $100000, %ecx
	movw $COM1 + 5, %dx
7:	inb %dx, %al
	testb $0x20, %al
	loopz 7b
	movb %ah, %al
	movw $COM1, %dx
	outb %al, %dx
	jmp 6b
8:	popl %edx
	popl %ecx
	popl %eax
	ret

	.section .rodata
msg_hello:  .asciz "32-bit protected mode test\n"
msg_paging: .asciz "paging alias ok\n"
msg_pass:   .asciz "PASS\n"
msg_fail:   .asciz "FAIL: 32-bit protected mode check failed\n"

	.section .data
	.balign 8
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF
	.quad 0x00CF92000000FFFF
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
probe: .long 0

	.section .bss
	.balign 4096
page_dir:   .skip 4096
page_table: .skip 4096
	.skip 4096
stack_top:
