/* Out-of-line wrappers for the DPDK functions that exist only as static inlines or macros in the
 * headers, so that bindgen can see them and Rust can call them. Each is a one-line forward. */
#ifndef ANYGATE_SHIM_H
#define ANYGATE_SHIM_H

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_thread.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_version.h>

uint16_t ag_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t ag_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *ag_pktmbuf_alloc(struct rte_mempool *mp);
int ag_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void ag_pktmbuf_free(struct rte_mbuf *m);
unsigned int ag_lcore_id(void);
uint64_t ag_rdtsc(void);
int ag_errno(void);
unsigned int ag_mempool_avail(const struct rte_mempool *mp);
const char *ag_version(void);

#endif
