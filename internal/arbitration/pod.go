package arbitration

import (
	"crypto/sha256"
	"encoding/hex"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
)

const (
	// HolderComponent is the app.kubernetes.io/component label of quorum holder pods.
	HolderComponent = "quorum-holder"
	// HolderServiceAccount is the default ServiceAccount the holder pods run as, in the
	// namespace of the quorum disk's PersistentVolumeClaim (config/quorum-holder makes it in
	// wolfpack-system; the chart in its own namespace, named after the release).
	HolderServiceAccount = "wolfpack-quorum-holder"
	// DevicePath is where a block-mode claim appears in the holder's container.
	DevicePath = "/dev/wolfpack-quorum"
	// MountPath is where a filesystem-mode claim is mounted; the disk is a file in it.
	MountPath = "/var/lib/wolfpack/quorum"
	// FileName is the quorum disk file on a filesystem-mode claim.
	FileName = "quorum.disk"
	// volumeName is the pod's name for the claim.
	volumeName = "quorum"
	// localVolumeName is the pod's name for the node-local channel to the node agent.
	localVolumeName = "node-local"
	// nonRoot is the user and group the holder runs as (distroless "nonroot").
	nonRoot = 65532
)

// PodOptions say how holder pods are made.
type PodOptions struct {
	// Image holds the node-agent binary at /node-agent.
	Image string
	// PullPolicy is the image pull policy (empty: Kubernetes' default).
	PullPolicy corev1.PullPolicy
	// ServiceAccount the pods run as (empty: HolderServiceAccount).
	ServiceAccount string
	// LeaseNamespace is where the holder renews the quorum holder's Lease.
	LeaseNamespace string
	// Block is true when the claim is a raw block device (volumeMode: Block).
	Block bool
	// LocalDir is the node's directory shared with the node agent (empty: nodelocal.DefaultDir,
	// where the chart's agent DaemonSet mounts it); the holder pod mounts its cluster's
	// subdirectory.
	LocalDir string
}

// PodName is the holder pod's name for node: one per node, so that a new holder can start while
// the pod of a node that is gone is still being deleted.
func PodName(cluster, node string) string {
	sum := sha256.Sum256([]byte(node))
	prefix := "wolfpack-quorum-" + cluster
	// A pod name is a DNS subdomain: at most 253 characters.
	if len(prefix) > 253-11 {
		prefix = prefix[:253-11]
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:10]
}

// HolderPod is the quorum holder pod of cluster qd on node: pinned to the node, mounting the
// cluster's ReadWriteOnce claim and the node-local channel to the node agent (a hostPath),
// running "node-agent quorum". It tolerates the taints that
// mark a node unreachable or not ready, because the manager, not the taint manager, decides when
// the holder moves; it does not tolerate the out-of-service taint, which is how a node that is
// gone gives up the pod and the volume.
func HolderPod(qd *wolfpackv1alpha1.QuorumDisk, node string, o PodOptions) *corev1.Pod {
	device := DevicePath
	container := corev1.Container{
		Name:            "holder",
		Image:           o.Image,
		ImagePullPolicy: o.PullPolicy,
		Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if o.Block {
		container.VolumeDevices = []corev1.VolumeDevice{{Name: volumeName, DevicePath: DevicePath}}
	} else {
		device = MountPath + "/" + FileName
		container.VolumeMounts = []corev1.VolumeMount{{Name: volumeName, MountPath: MountPath}}
	}
	sa := o.ServiceAccount
	if sa == "" {
		sa = HolderServiceAccount
	}
	// The node-local channel to the node agent (package nodelocal): the holder holds the disk
	// only while the agent's record there is fresh. The agent (root) makes the directory
	// writable for both; the same path inside and outside the container.
	localRoot := o.LocalDir
	if localRoot == "" {
		localRoot = nodelocal.DefaultDir
	}
	localPath := path.Join(localRoot, qd.Name)
	container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: localVolumeName, MountPath: localPath})
	container.Command = []string{"/node-agent", "quorum", "--cluster=" + qd.Name, "--device=" + device,
		"--lease-namespace=" + o.LeaseNamespace, "--local-dir=" + localRoot}

	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      PodName(qd.Name, node),
			Namespace: qd.Spec.VolumeClaim.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":      "wolfpack",
				"app.kubernetes.io/component": HolderComponent,
				wolfpackv1alpha1.ClusterLabel: qd.Name,
				wolfpackv1alpha1.NodeLabel:    node,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(qd,
				wolfpackv1alpha1.GroupVersion.WithKind("QuorumDisk"))},
		},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: sa,
			RestartPolicy:      corev1.RestartPolicyAlways,
			// The holder releases the disk on SIGTERM: a few I/Os.
			TerminationGracePeriodSeconds: ptr.To[int64](10),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](nonRoot),
				RunAsGroup:     ptr.To[int64](nonRoot),
				FSGroup:        ptr.To[int64](nonRoot),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			},
			Containers: []corev1.Container{container},
			Volumes: []corev1.Volume{
				{Name: volumeName, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: qd.Spec.VolumeClaim.Name}}},
				{Name: localVolumeName, VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: localPath, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
			},
		},
	}
}

// PodLive reports whether a holder pod may still hold the disk: it is not being deleted and has
// not terminated.
func PodLive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded
}
