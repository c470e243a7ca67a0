/* SPDX-License-Identifier: Apache-2.0 */
#include "grpc/unary.h"

#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>

void poh_grpc_unary_init(poh_grpc_unary_t *u)
{
    memset(u, 0, sizeof *u);
    grpc_metadata_array_init(&u->initial_md);
    grpc_metadata_array_init(&u->trailing_md);
    u->details = grpc_empty_slice();
}

grpc_call_error poh_grpc_unary_start(poh_grpc_unary_t *u, grpc_call *call, grpc_metadata *md,
                                     size_t nmd, grpc_slice payload, void *tag)
{
    u->send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    ops[5].data.recv_status_on_client.error_string = &u->error_string;
    return grpc_call_start_batch(call, ops, 6, tag, NULL);
}

void poh_grpc_unary_release(poh_grpc_unary_t *u)
{
    grpc_metadata_array_destroy(&u->initial_md);
    grpc_metadata_array_destroy(&u->trailing_md);
    if (u->send)
        grpc_byte_buffer_destroy(u->send);
    if (u->recv)
        grpc_byte_buffer_destroy(u->recv);
    grpc_slice_unref(u->details);
    gpr_free((void *)u->error_string);
    poh_grpc_unary_init(u);
}
