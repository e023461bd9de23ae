/* Application-processor trampoline, copied by the smp test to 0x8000
 * (SIPI vector 0x08). An AP starts here in real mode at 0800:0000, loads
 * the kernel's GDT, enters protected mode, takes a private stack with
 * LOCK XADD and joins start.S's path into long mode, which calls
 * cpu_entry. Addresses inside are computed for the copy at 0x8000. */
#define TRAMP_BASE 0x8000
#define T(x) ((x) - smp_trampoline + TRAMP_BASE)
#define AP_STACK_SIZE 4096

	.section .rodata
	.code16
	.globl smp_trampoline, smp_trampoline_end
smp_trampoline:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl T(tramp_gdt_desc)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $T(tramp32)

	.code32
tramp32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl $AP_STACK_SIZE, %eax
	lock xaddl %eax, ap_stack_next
	addl $AP_STACK_SIZE, %eax
	movl %eax, %esp
	movl $enter_long_mode, %eax
	jmp *%eax

	.balign 8
tramp_gdt_desc:
	.word 6 * 8 - 1
	.long gdt
smp_trampoline_end:

	.section .data
	.balign 8
	.globl ap_stack_next
ap_stack_next: .long 0
