"""Every Pulumi type token the tests look for, in one place (a token is part of each resource's URN:
changing one in the code replaces resources, so the tests name them exactly, once)."""

from __future__ import annotations

USER = "pulumi-python:dynamic/devpi:User"
INDEX = "pulumi-python:dynamic/devpi:Index"
ROOT_ACCOUNT = "pulumi-python:dynamic/devpi:Root"
LATCH = "pulumi-python:dynamic/devpi:InitialValue"
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
COMMAND = "command:remote:Command"
REGISTRY = "devpi-registry:registry:DevpiRegistry"
HOST_SETUP = "devpi-registry:host:HostSetup"
SERVER = "devpi-registry:server:DevpiServer"
BACKUP = "devpi-registry:backup:BackupSchedule"
SHARED_SECRET = "pulumi-python:dynamic/devpi:GeneratedSecret"
REPLICA_READY = "pulumi-python:dynamic/devpi:ReplicaReady"
NETWORK = "docker:index/network:Network"
PROXY = "devpi-registry:proxy:DevpiProxy"
REPLICA = "devpi-registry:replica:DevpiReplica"
