// The version chasqui reports; the remote agent carries its own version (src/cluster/kit/agent.sh).
export const VERSION = "0.1.0";
