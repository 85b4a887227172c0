/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of vigia_helpers.c. The Rust side declares the same functions
 * in ffi.rs; this header lets the C compiler check the definitions.
 */
#ifndef VIGIA_HELPERS_H
#define VIGIA_HELPERS_H

#include <linux/types.h>

struct kernel_cpustat;
struct mm_struct;
struct signal_struct;
struct task_struct;

void vigia_rcu_read_lock(void);
void vigia_rcu_read_unlock(void);
struct task_struct *vigia_next_process(struct task_struct *p);
struct task_struct *vigia_first_thread(struct task_struct *p);
struct task_struct *vigia_next_thread(struct task_struct *t);
pid_t vigia_task_ppid(struct task_struct *p);
uid_t vigia_task_uid(struct task_struct *p);
char vigia_task_state_char(struct task_struct *p);
void vigia_task_lock(struct task_struct *p);
void vigia_task_unlock(struct task_struct *p);
unsigned long vigia_mm_rss_pages(struct mm_struct *mm);
unsigned int vigia_stats_read_begin(struct signal_struct *sig);
int vigia_stats_read_retry(struct signal_struct *sig, unsigned int seq);
unsigned int vigia_nr_cpu_ids(void);
unsigned int vigia_next_possible_cpu(int cpu);
int vigia_cpu_online(unsigned int cpu);
void vigia_kcpustat_fetch(struct kernel_cpustat *dst, int cpu);
u64 vigia_cpu_idle_time_us(int cpu);
u64 vigia_cpu_iowait_time_us(int cpu);
unsigned long vigia_file_pages(void);
unsigned long vigia_slab_reclaimable_pages(void);
unsigned long vigia_swapcache_pages(void);
long vigia_free_swap_pages(void);

#endif /* VIGIA_HELPERS_H */
