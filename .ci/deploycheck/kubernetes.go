package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests are decoded strictly into the API's own Go types (k8s.io/api, the release of
// go.mod): an unknown or misspelt field, a wrong type, a duplicate key or a malformed quantity is an error, as
// the API server's strict field validation (kubectl apply's default) would make it. kubeconform would need the
// JSON schemas from the network; these types are the schemas' source and come from the Go module proxy. What the
// types cannot say (names, label syntax, references between objects, the server's own rules) is checked below.

// kustomization is the part of a Kustomization that deploy/k8s uses; any other field is refused.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

// objects holds the decoded manifests by kind.
type objects struct {
	namespaces  []*corev1.Namespace
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	jobs        []*batchv1.Job
	pdbs        []*policyv1.PodDisruptionBudget
	kustomize   *kustomization
	files       map[string]string // object → file
}

func checkKubernetes(dir string, known map[string]bool) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("no manifests in %s (%v)", dir, err)
	}
	o := &objects{files: map[string]string{}}
	var errs []error
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f) // #nosec G304 -- the repository's manifests
		if err != nil {
			return 0, err
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			if err := o.decode(filepath.Base(f), []byte(doc)); err != nil {
				errs = append(errs, fmt.Errorf("%s, document %d: %w", filepath.Base(f), i+1, err))
			}
			n++
		}
	}
	if len(errs) > 0 {
		return n, errors.Join(errs...)
	}
	return n, o.check(dir, known)
}

func (o *objects) decode(file string, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		v := &corev1.Namespace{}
		o.namespaces, obj = append(o.namespaces, v), v
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		o.configMaps, obj = append(o.configMaps, v), v
	case "v1 Secret":
		v := &corev1.Secret{}
		o.secrets, obj = append(o.secrets, v), v
	case "v1 Service":
		v := &corev1.Service{}
		o.services, obj = append(o.services, v), v
	case "apps/v1 Deployment":
		v := &appsv1.Deployment{}
		o.deployments, obj = append(o.deployments, v), v
	case "batch/v1 Job":
		v := &batchv1.Job{}
		o.jobs, obj = append(o.jobs, v), v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		o.pdbs, obj = append(o.pdbs, v), v
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		o.kustomize = &kustomization{}
		obj = o.kustomize
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind these manifests use (or a wrong apiVersion)", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if m, ok := obj.(metav1.Object); ok {
		o.files[tm.Kind+"/"+m.GetName()] = file
		var errs []error
		for _, msg := range validation.IsDNS1123Subdomain(m.GetName()) {
			errs = append(errs, fmt.Errorf("%s name %q: %s", tm.Kind, m.GetName(), msg))
		}
		for k, v := range m.GetLabels() {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				errs = append(errs, fmt.Errorf("%s %s: label %s=%s: %s", tm.Kind, m.GetName(), k, v, msg))
			}
		}
		return errors.Join(errs...)
	}
	return nil
}

func (o *objects) check(dir string, known map[string]bool) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(o.namespaces) != 1 || len(o.configMaps) != 1 || len(o.secrets) != 1 || len(o.deployments) != 1 ||
		len(o.services) != 1 || len(o.jobs) != 1 || len(o.pdbs) != 1 || o.kustomize == nil {
		return errors.New("want one each of Namespace, ConfigMap, Secret, Deployment, Service, Job, PodDisruptionBudget and a kustomization.yaml")
	}
	ns, cm, secret, dep, svc, job, pdb := o.namespaces[0], o.configMaps[0], o.secrets[0], o.deployments[0], o.services[0], o.jobs[0], o.pdbs[0]
	for _, m := range []metav1.Object{cm, secret, dep, svc, job, pdb} {
		if m.GetNamespace() != ns.Name {
			fail("%s: namespace %q, want %q", m.GetName(), m.GetNamespace(), ns.Name)
		}
	}
	// Variables: every key is one the server reads.
	var names []string
	for k := range cm.Data {
		names = append(names, k)
	}
	for k := range secret.StringData {
		names = append(names, k)
	}
	if err := unknownVariables(names, known); err != nil {
		fail("ConfigMap/Secret: %w", err)
	}
	for _, k := range []string{"NEXUS_SECRET_KEY", "NEXUS_DATABASE_URL"} {
		if _, ok := secret.StringData[k]; !ok {
			fail("Secret: no %s", k)
		}
	}
	for k := range cm.Data {
		if strings.Contains(k, "SECRET") || k == "NEXUS_DATABASE_URL" || k == "NEXUS_REDIS_URL" {
			fail("ConfigMap: %s belongs in the Secret", k)
		}
	}
	delay, err1 := time.ParseDuration(cm.Data["NEXUS_SHUTDOWN_DELAY"])
	timeout, err2 := time.ParseDuration(cm.Data["NEXUS_SHUTDOWN_TIMEOUT"])
	if err := errors.Join(err1, err2); err != nil || delay <= 0 {
		fail("ConfigMap: NEXUS_SHUTDOWN_DELAY and NEXUS_SHUTDOWN_TIMEOUT must be set (%v)", err)
	}
	if cm.Data["NEXUS_BEHIND_TLS_PROXY"] != "true" || cm.Data["NEXUS_TRUSTED_PROXIES"] == "" {
		fail("ConfigMap: TLS ends at the ingress: want NEXUS_BEHIND_TLS_PROXY=true and NEXUS_TRUSTED_PROXIES")
	}

	// The Deployment.
	spec := dep.Spec
	if spec.Replicas == nil || *spec.Replicas != 3 {
		fail("Deployment: want 3 replicas")
	}
	sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(spec.Template.Labels)) {
		fail("Deployment: the selector %v does not select the pod template's labels %v (%v)", spec.Selector, spec.Template.Labels, err)
	}
	if ru := spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		fail("Deployment: a rolling update must keep every replica (maxUnavailable: 0)")
	}
	pod := spec.Template.Spec
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= delay+timeout {
		fail("Deployment: terminationGracePeriodSeconds must exceed NEXUS_SHUTDOWN_DELAY + NEXUS_SHUTDOWN_TIMEOUT (%s)", delay+timeout)
	}
	if len(pod.Containers) != 1 {
		fail("Deployment: want one container")
		return errors.Join(errs...)
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, imageCmd) || len(c.Command) != 0 {
		fail("Deployment: want args %q and the image's entrypoint, got command %q args %q", imageCmd, c.Command, c.Args)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			fail("Deployment: port %q: %s", p.Name, msg)
		}
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["metrics"] != 9090 || cm.Data["NEXUS_HTTP_ADDR"] != ":8080" || cm.Data["NEXUS_METRICS_ADDR"] != ":9090" {
		fail("Deployment: ports http 8080 and metrics 9090, as NEXUS_HTTP_ADDR and NEXUS_METRICS_ADDR and the image's EXPOSE say: got %v", ports)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || ports[p.HTTPGet.Port.String()] == 0 {
			fail("Deployment: the %s probe must GET %s on a named container port", name, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	if r := c.ReadinessProbe; r != nil && time.Duration(r.PeriodSeconds*r.FailureThreshold)*time.Second >= delay {
		fail("Deployment: the readiness probe notices a draining pod after %ds, not within NEXUS_SHUTDOWN_DELAY (%s)",
			r.PeriodSeconds*r.FailureThreshold, delay)
	}
	errs = append(errs, checkPod("Deployment", pod, c, cm.Name, secret.Name)...)
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		fail("Deployment: no CPU request")
	}

	// The Service and the PodDisruptionBudget select the Deployment's pods; the Service's ports exist.
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		fail("Service: its selector %v does not select the Deployment's pods", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		if ports[p.TargetPort.String()] == 0 {
			fail("Service: port %s targets %s, which the container does not name", p.Name, p.TargetPort.String())
		}
	}
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || psel.Empty() || !psel.Matches(labels.Set(spec.Template.Labels)) {
		fail("PodDisruptionBudget: its selector does not select the Deployment's pods (%v)", err)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		fail("PodDisruptionBudget: set maxUnavailable or minAvailable")
	}

	// The migration Job: the same image and configuration, `nexus migrate`, never restarted in place.
	jpod := job.Spec.Template.Spec
	if len(jpod.Containers) != 1 {
		fail("Job: want one container")
		return errors.Join(errs...)
	}
	jc := jpod.Containers[0]
	if !slices.Equal(jc.Args, []string{"migrate"}) || jc.Image != c.Image {
		fail("Job: want args [migrate] on the Deployment's image %q, got %q on %q", c.Image, jc.Args, jc.Image)
	}
	if jpod.RestartPolicy != corev1.RestartPolicyNever && jpod.RestartPolicy != corev1.RestartPolicyOnFailure {
		fail("Job: restartPolicy must be Never or OnFailure")
	}
	errs = append(errs, checkPod("Job", jpod, jc, cm.Name, secret.Name)...)

	// kustomization.yaml: every manifest but the placeholder Secret, each existing.
	k := o.kustomize
	if k.Namespace != ns.Name {
		fail("kustomization.yaml: namespace %q, want %q", k.Namespace, ns.Name)
	}
	var want []string
	for key, f := range o.files {
		if !strings.HasPrefix(key, "Secret/") && !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	if !sameSet(k.Resources, want) {
		fail("kustomization.yaml: resources %q, want every manifest but secret.yaml: %q", k.Resources, want)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			fail("kustomization.yaml: %v", err)
		}
	}
	if len(k.Images) != 1 || k.Images[0].Name != c.Image[:strings.IndexByte(c.Image+":", ':')] {
		fail("kustomization.yaml: want one images entry for %q", c.Image)
	}
	return errors.Join(errs...)
}

// checkPod checks what every nexus pod needs: the image's user, non-root and read-only, no capabilities, the
// ConfigMap and the Secret, resources.
func checkPod(what string, pod corev1.PodSpec, c corev1.Container, configMap, secret string) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(what+": "+format, a...)) }
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != imageUID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("the pod must run as non-root user %d (the image's) with the RuntimeDefault seccomp profile", imageUID)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		fail("the container must have a read-only root filesystem, no privilege escalation and drop ALL capabilities")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		fail("automountServiceAccountToken must be false: the server does not call the Kubernetes API")
	}
	var cmRef, secretRef bool
	for _, e := range c.EnvFrom {
		cmRef = cmRef || (e.ConfigMapRef != nil && e.ConfigMapRef.Name == configMap)
		secretRef = secretRef || (e.SecretRef != nil && e.SecretRef.Name == secret)
	}
	if !cmRef || !secretRef {
		fail("the container must take its environment from ConfigMap %s and Secret %s", configMap, secret)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		fail("no memory request")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		fail("no memory limit")
	}
	return errs
}
