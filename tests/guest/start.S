/* Entry of the 64-bit C test kernels: Multiboot hands us 32-bit protected
 * mode (EAX = magic, EBX = info); we zero .bss, load our own GDT, identity
 * map the low 4 GiB with 2 MiB pages (RAM, IOAPIC and LAPIC alike), enable
 * PAE + EFER.LME + paging, far jump to 64-bit code and call
 * test_main(info). Its return value is the debug-exit code. */
#define MB_BOOT_MAGIC 0x2BADB002
#define MSR_EFER      0xC0000080
#define EFER_LME      (1 << 8)
#define CR0_PE        (1 << 0)
#define CR0_PG        (1 << 31)
#define CR4_PAE       (1 << 5)

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	cmpl $MB_BOOT_MAGIC, %eax
	jne bad_magic
	movl %ebx, mb_info

	/* .bss (page tables and stacks live there): the loader should have
	 * zeroed it; do not rely on it. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	movl $bsp_stack_top, %esp
	lgdt gdt_desc
	ljmp $GDT_CODE32, $1f
1:	movw $GDT_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs

	/* 2048 2 MiB pages: PD entries = address | PS | RW | P. */
	movl $page_dirs, %edi
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax
	movl %eax, (%edi,%ecx,8)
	movl $0, 4(%edi,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 2b
	/* PDPT[0..3] -> the four page directories; PML4[0] -> PDPT. */
	movl $pdpt, %edi
	movl $page_dirs + 3, %eax
	xorl %ecx, %ecx
3:	movl %eax, (%edi,%ecx,8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 3b
	movl $pdpt + 3, %eax
	movl %eax, pml4

	.globl enter_long_mode
enter_long_mode:              /* also the path of the APs (smp test) */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $GDT_CODE64, $long_mode

	.code64
long_mode:
	movw $GDT_DATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	/* An AP arrives here with its stack pointer in ap_stack_next. */
	movq cpu_entry(%rip), %rax
	testq %rax, %rax
	jnz 4f
	movl $bsp_stack_top, %esp
	movl mb_info(%rip), %edi
	call test_main
	movl %eax, %edi
	call guest_exit
4:	call *%rax
8:	cli
	hlt
	jmp 8b

	.code32
bad_magic:
	/* Not booted by a Multiboot loader: say so on COM1, exit 0x7E. */
	movl $bad_magic_msg, %esi
	movw $0x3F8, %dx
5:	lodsb
	testb %al, %al
	jz 6f
	outb %al, %dx
	jmp 5b
6:	movb $0x7E, %al
	outb %al, $0xF4
7:	hlt
	jmp 7b

	.section .rodata
bad_magic_msg:
	.asciz "FAIL: not started by a Multiboot loader (bad EAX magic)\n"

	.section .data
	.balign 8
	.globl mb_info, cpu_entry
mb_info:   .long 0, 0
cpu_entry: .quad 0            /* set by the smp test for the APs */

	.balign 16
	.globl gdt, gdt_desc
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF  /* 0x08: 32-bit code */
	.quad 0x00CF92000000FFFF  /* 0x10: data */
	.quad 0x00AF9A000000FFFF  /* 0x18: 64-bit code */
	.quad 0x00009A000000FFFF  /* 0x20: 16-bit code, base 0 */
	.quad 0x000092000000FFFF  /* 0x28: 16-bit data, base 0 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.set GDT_CODE32, 0x08
	.set GDT_DATA, 0x10
	.set GDT_CODE64, 0x18

	.section .bss
	.balign 4096
	.globl pml4, pdpt, page_dirs
pml4:      .skip 4096
pdpt:      .skip 4096
page_dirs: .skip 4 * 4096
	.balign 16
bsp_stack: .skip 16384
bsp_stack_top:
