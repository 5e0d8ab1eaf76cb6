/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Doubly linked lists with a head and a tail, in the manner of systemd's list.h: the items have
 * "prev" and "next" members, the owner keeps head and tail pointers. Appending and removing are
 * O(1); an item removed has prev and next NULL.
 *
 *         LIST_APPEND(s->conns_head, s->conns_tail, c);
 *         LIST_PREPEND(s->conns_head, s->conns_tail, c);
 *         LIST_REMOVE(s->conns_head, s->conns_tail, c);
 */

#define LIST_APPEND(head, tail, item)                                   \
        do {                                                            \
                (item)->prev = (tail);                                  \
                (item)->next = NULL;                                    \
                if (tail)                                               \
                        (tail)->next = (item);                          \
                else                                                    \
                        (head) = (item);                                \
                (tail) = (item);                                        \
        } while (0)

#define LIST_PREPEND(head, tail, item)                                  \
        do {                                                            \
                (item)->prev = NULL;                                    \
                (item)->next = (head);                                  \
                if (head)                                               \
                        (head)->prev = (item);                          \
                else                                                    \
                        (tail) = (item);                                \
                (head) = (item);                                        \
        } while (0)

#define LIST_REMOVE(head, tail, item)                                   \
        do {                                                            \
                if ((item)->prev)                                       \
                        (item)->prev->next = (item)->next;              \
                else                                                    \
                        (head) = (item)->next;                          \
                if ((item)->next)                                       \
                        (item)->next->prev = (item)->prev;              \
                else                                                    \
                        (tail) = (item)->prev;                          \
                (item)->prev = (item)->next = NULL;                     \
        } while (0)
