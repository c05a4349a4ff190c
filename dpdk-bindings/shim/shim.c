#include "shim.h"

uint16_t ag_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t ag_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *ag_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int ag_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void ag_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

unsigned int ag_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t ag_rdtsc(void)
{
	return rte_rdtsc();
}

int ag_errno(void)
{
	return rte_errno;
}

unsigned int ag_mempool_avail(const struct rte_mempool *mp)
{
	return rte_mempool_avail_count(mp);
}

const char *ag_version(void)
{
	return rte_version();
}
