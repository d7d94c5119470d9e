/*
 * frame.h - length-prefixed frames (DESIGN.md §4, docs/PROTOCOL.md).
 *
 *   +----------------------+---------------------------+
 *   | length: u32 big-end. | payload: `length` bytes   |
 *   +----------------------+---------------------------+
 *
 * The same framing runs in both directions on every transport. A length
 * above the receiver's maximum is refused as soon as the 4-byte header is
 * seen, before any allocation or further read.
 *
 * Pure codec: no I/O, no allocation beyond the caller's struct buf.
 */
#ifndef KM_TRANSPORT_FRAME_H
#define KM_TRANSPORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define FRAME_HEADER_LEN  4u
#define FRAME_MAX_DEFAULT (16u * 1024u * 1024u) /* max_message_size_bytes */
#define FRAME_MAX_LIMIT   0xffffffffu           /* what a u32 header can say */

/*
 * Looks for one complete frame at the start of p[0..len).
 * Returns:
 *   KM_OK              a frame is complete: payload is p[*payload_off ..
 *                      *payload_off + *payload_len), and *consumed bytes
 *                      (header + payload) belong to it;
 *   KM_ERR_INCOMPLETE  more bytes are needed (*need_total, if not NULL,
 *                      says how many bytes the frame will take in total once
 *                      the header is known, else FRAME_HEADER_LEN);
 *   KM_ERR_TOO_LARGE   the header announces more than max_payload bytes;
 *                      *payload_len holds the announced length.
 * Out-parameters are zeroed unless stated. need_total may be NULL.
 */
int frame_decode(const uint8_t *p, size_t len, size_t max_payload, size_t *payload_off,
                 size_t *payload_len, size_t *consumed, size_t *need_total) KM_WUR;

/* Writes the 4-byte header for a payload of len bytes. */
void frame_encode_header(uint8_t out[FRAME_HEADER_LEN], uint32_t len);

/* Appends header + payload to out. Returns KM_ERR_TOO_LARGE if len exceeds
 * max_payload, else a buf result. */
int frame_encode(struct buf *out, const uint8_t *payload, size_t len, size_t max_payload) KM_WUR;

/*
 * Zero-copy framing: reserve the header before encoding the payload into
 * the same buffer, then patch it.
 *   frame_begin(out)                  appends a placeholder header
 *   ... append the payload to out ...
 *   frame_finish(out, start, max)     writes the length; KM_ERR_TOO_LARGE
 *                                     if the payload exceeds max
 * start is the value of buf_len(out) before frame_begin.
 */
int frame_begin(struct buf *out) KM_WUR;
int frame_finish(struct buf *out, size_t start, size_t max_payload) KM_WUR;

#endif /* KM_TRANSPORT_FRAME_H */
