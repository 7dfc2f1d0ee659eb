package membership

import (
	"k8s.io/apimachinery/pkg/labels"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Selector selects a cluster's member Nodes: spec.nodeSelector, or else the nodes labelled
// wolfpack.dev/cluster=<the QuorumDisk's name>.
func Selector(qd *wolfpackv1alpha1.QuorumDisk) labels.Selector {
	if len(qd.Spec.NodeSelector) > 0 {
		return labels.SelectorFromSet(qd.Spec.NodeSelector)
	}
	return labels.SelectorFromSet(labels.Set{wolfpackv1alpha1.ClusterLabel: qd.Name})
}

// QuorumLeaseName names the Lease through which the quorum holder of cluster publishes which
// node holds the quorum disk, in the agents' namespace.
func QuorumLeaseName(cluster string) string {
	return "wolfpack-quorum-" + cluster
}
