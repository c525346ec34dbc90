# shellcheck shell=bash
# The fog nodes' rights on the broker and in Redis (docs/SECURITY.md), in one place for the local
# services (services.sh) and the Swarm stack (swarm.sh). Source it.

# node_broker_rights ID: for the node ids that the regex ID matches (one id, or any for the
# shared user), one a line: the vhost permissions' configure, write and read patterns (its
# control queue; publishing to fog.events; consuming its class queues and its control queue,
# binding that to fog.cluster), then the write pattern of its topic permission on fog.events
# (the routing key node.<id>). Never a class queue's declaration or binding, nor fog.tasks.
node_broker_rights() {
  local id=$1
  printf '%s\n' \
    "^fog\\.control\\.$id\\..*\$" \
    "^(fog\\.events|fog\\.control\\.$id\\..*)\$" \
    "^(fog\\.node\\.$id\\.[a-z]+|fog\\.control\\.$id\\..*|fog\\.cluster)\$" \
    "^node\\.$id\$"
}

# node_redis_rights ID: a node's Redis ACL rules (ID: its id, or * for the shared user): its
# registration and heartbeat, and SADD on fog:nodes (a selector), nothing else.
node_redis_rights() {
  local keys
  if [ "$1" = '*' ]; then keys='~fog:node:*'; else keys="~fog:node:$1 ~fog:node:$1:heartbeat"; fi
  echo "resetkeys $keys resetchannels -@all +ping +select +hset +set +del (~fog:nodes +sadd)"
}
