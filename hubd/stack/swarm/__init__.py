"""People's servers on a Docker Swarm of the lab's machines.

hubd's own engine becomes the Swarm manager (the hub, the proxy and the docker gate stay there
as plain containers); people's servers run as Swarm services on the nodes. Volumes are
node-local, so each person has a home node (`homes`), recorded as a label on that node in the
Swarm itself: it survives hubd, the hub and their restarts, and `docker node inspect` shows it.
"""
